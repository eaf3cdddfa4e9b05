package source

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// credentials are what one fetch authenticates with.
type credentials struct {
	method   transport.AuthMethod
	caBundle []byte
	// secrets are redacted from every error message.
	secrets []string
}

// resolveAuth reads the credential files for endpoint ep. A password in
// the URL itself is used as basic auth when no other is configured.
func resolveAuth(a Auth, ep *transport.Endpoint) (credentials, error) {
	var c credentials
	if a.CAFile != "" {
		b, err := os.ReadFile(a.CAFile)
		if err != nil {
			return c, fmt.Errorf("read auth.caFile: %w", err)
		}
		c.caBundle = b
	}
	switch ep.Protocol {
	case "http", "https":
		if a.SSHPrivateKeyFile != "" {
			return c, fmt.Errorf("auth.sshPrivateKeyFile: set for a %s URL", ep.Protocol)
		}
		switch {
		case a.PasswordFile != "":
			p, err := readSecret(a.PasswordFile)
			if err != nil {
				return c, fmt.Errorf("read auth.passwordFile: %w", err)
			}
			user := a.Username
			if user == "" {
				// Hosts that take a token as password ignore the name.
				user = "git"
			}
			c.method = &githttp.BasicAuth{Username: user, Password: p}
			c.secrets = append(c.secrets, p)
		case a.BearerTokenFile != "":
			tok, err := readSecret(a.BearerTokenFile)
			if err != nil {
				return c, fmt.Errorf("read auth.bearerTokenFile: %w", err)
			}
			c.method = &githttp.TokenAuth{Token: tok}
			c.secrets = append(c.secrets, tok)
		case ep.User != "" || ep.Password != "":
			c.method = &githttp.BasicAuth{Username: ep.User, Password: ep.Password}
			c.secrets = append(c.secrets, ep.Password)
			if ep.Password == "" {
				c.secrets = append(c.secrets, ep.User)
			}
		}
	case "ssh":
		if a.PasswordFile != "" || a.BearerTokenFile != "" {
			return c, fmt.Errorf("auth: password or bearer token set for an ssh URL")
		}
		if a.SSHPrivateKeyFile == "" {
			return c, fmt.Errorf("auth.sshPrivateKeyFile: required for an ssh URL")
		}
		if a.SSHKnownHostsFile == "" {
			return c, fmt.Errorf("auth.sshKnownHostsFile: required for an ssh URL")
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, a.SSHPrivateKeyFile, "")
		if err != nil {
			return c, fmt.Errorf("read auth.sshPrivateKeyFile: %w", err)
		}
		cb, err := gitssh.NewKnownHostsCallback(a.SSHKnownHostsFile)
		if err != nil {
			return c, fmt.Errorf("read auth.sshKnownHostsFile: %w", err)
		}
		keys.HostKeyCallback = cb
		c.method = keys
	default:
		return c, fmt.Errorf("unsupported protocol %q", ep.Protocol)
	}
	return c, nil
}

// readSecret reads a credential file, dropping surrounding whitespace
// such as the trailing newline editors and Kubernetes secrets leave.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
