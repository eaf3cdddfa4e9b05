package gitserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves the bare repositories under a directory over SSH on
// loopback, running git-upload-pack for each fetch. Only clients holding
// one of the authorized keys get in. It serves fetches only, not pushes.
type SSHServer struct {
	root       string
	hostKey    ssh.Signer
	authorized []ssh.PublicKey
	listener   net.Listener
	logf       func(format string, args ...any)
	wg         sync.WaitGroup
}

// NewSSH starts an SSH server on a loopback address serving the bare
// repositories under root (for example a [Server]'s Root, so both
// protocols serve the same repositories). The server is closed when the
// test ends.
func NewSSH(t testing.TB, root string, authorized ...ssh.PublicKey) *SSHServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate SSH host key: %v", err)
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("make SSH host signer: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	s := &SSHServer{root: root, hostKey: hostKey, authorized: authorized, listener: l, logf: t.Logf}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr returns the server's host:port.
func (s *SSHServer) Addr() string { return s.listener.Addr().String() }

// RepoURL returns the ssh:// clone URL of the repository called name,
// with user git.
func (s *SSHServer) RepoURL(name string) string {
	return "ssh://git@" + s.Addr() + "/" + name
}

// HostKey returns the server's public host key.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// WriteKnownHosts writes a known_hosts file pinning the server's host key
// and returns its path.
func (s *SSHServer) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	return WriteKnownHosts(t, s.Addr(), s.HostKey())
}

// WriteKnownHosts writes a known_hosts file that pins key for addr
// (host:port) and returns its path.
func WriteKnownHosts(t testing.TB, addr string, key ssh.PublicKey) string {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		t.Fatalf("write known_hosts: %v", err)
	}
	return p
}

// NewSSHKey generates an Ed25519 client key, writes the private key in
// OpenSSH format to a file and returns the file's path and the public key.
func NewSSHKey(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate SSH key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("marshal SSH key: %v", err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("write SSH key: %v", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("SSH public key: %v", err)
	}
	return p, sshPub
}

// Close stops the server and waits for its connections to end.
func (s *SSHServer) Close() {
	s.listener.Close()
	s.wg.Wait()
}

func (s *SSHServer) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, a := range s.authorized {
				if bytes.Equal(a.Marshal(), key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(s.hostKey)
	return cfg
}

func (s *SSHServer) serve() {
	defer s.wg.Done()
	cfg := s.config()
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(c, cfg)
		}()
	}
}

func (s *SSHServer) handleConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.handleSession(ch, chReqs)
	}
}

func (s *SSHServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			// env and the like: accepted and ignored.
			if req.WantReply {
				_ = req.Reply(req.Type == "env", nil)
			}
			continue
		}
		dir, err := s.repoDir(req.Payload)
		if err != nil {
			s.logf("gitserver ssh: %v", err)
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		status := s.uploadPack(ch, dir)
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		return
	}
}

// repoDir parses an exec payload such as "git-upload-pack '/config.git'"
// and returns the repository's directory.
func (s *SSHServer) repoDir(payload []byte) (string, error) {
	if len(payload) < 4 {
		return "", errors.New("short exec payload")
	}
	n := binary.BigEndian.Uint32(payload)
	if int(n) != len(payload)-4 {
		return "", errors.New("malformed exec payload")
	}
	cmd := string(payload[4:])
	prog, arg, ok := strings.Cut(cmd, " ")
	if !ok || prog != "git-upload-pack" {
		return "", fmt.Errorf("command %q not allowed: fetch only", cmd)
	}
	name := strings.Trim(arg, "'\"")
	name = strings.TrimPrefix(name, "/")
	dir := filepath.Join(s.root, filepath.FromSlash(name))
	if rel, err := filepath.Rel(s.root, dir); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("repository %q outside the served root", name)
	}
	return dir, nil
}

// uploadPack runs git upload-pack for dir on the channel and returns its
// exit status.
func (s *SSHServer) uploadPack(ch ssh.Channel, dir string) uint32 {
	cmd := exec.Command("git", "upload-pack", dir)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		s.logf("gitserver ssh: start git upload-pack: %v", err)
		return 1
	}
	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return uint32(exit.ExitCode())
		}
		return 1
	}
	return 0
}
