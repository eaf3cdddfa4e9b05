package webhook_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

// tlsServer starts a webhook.Server on loopback that requires client certificates from the CA
// file it returns, re-read every 50 ms, with a short header timeout.
func tlsServer(t *testing.T, clientCAs []byte) (addr, caFile string, serving *harness.CA) {
	t.Helper()
	dir := t.TempDir()
	serving, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := serving.WriteServingCert(dir, 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(caFile, clientCAs, 0o600); err != nil {
		t.Fatal(err)
	}
	// The port is free when picked and taken when the server listens: something else may take
	// it in between (another test's listener, the local end of a connection). Then the server
	// exits at once with EADDRINUSE and a new port is picked.
	for attempt := 1; ; attempt++ {
		addr, err = harness.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		err = startTLSServer(t, addr, dir, caFile)
		if err == nil {
			return addr, caFile, serving
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		t.Logf("port of %s was taken, picking another: %v", addr, err)
	}
}

// startTLSServer starts the server of tlsServer on addr and waits until it listens; it
// returns the server's error if it exited instead.
func startTLSServer(t *testing.T, addr, certDir, caFile string) error {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	s, err := webhook.NewServer(webhook.ServerOptions{
		Host: "127.0.0.1", Port: p, CertDir: certDir, ClientCAFile: caFile,
		ClientCAReloadInterval: 50 * time.Millisecond,
		ReadHeaderTimeout:      300 * time.Millisecond,
		ReadTimeout:            time.Second,
		Logger:                 logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Register("/guard", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "decided") }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var (
		exited bool
		exit   error
	)
	err = harness.Poll(t.Context(), time.Minute, func() error {
		select {
		case exit = <-done:
			exited = true
			return nil
		default:
		}
		return s.StartedChecker()(nil)
	})
	switch {
	case exited:
		cancel()
		return fmt.Errorf("server exited before it listened: %w", exit)
	case err != nil:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return nil
}

// call posts to the guard with a client certificate from ca and returns the error, if any.
func call(addr string, serving, ca *harness.CA) error {
	crt, key, err := ca.ClientCert("kube-apiserver", 2)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serving.PEM)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}},
		DisableKeepAlives: true,
	}, Timeout: 30 * time.Second}
	resp, err := client.Post("https://"+addr+"/guard", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "decided" {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

// TestClientCARotationWithOverlap rotates the API server's client CA as an operator would: add
// the new CA next to the old one, move the API server to the new one, then drop the old one.
// During the overlap both are let in; after it only the new one; a file that stops parsing
// keeps the last good bundle.
func TestClientCARotationWithOverlap(t *testing.T) {
	oldCA, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addr, caFile, serving := tlsServer(t, oldCA.PEM)
	if err := call(addr, serving, oldCA); err != nil {
		t.Fatalf("the configured CA's client: %v", err)
	}
	if err := call(addr, serving, newCA); err == nil {
		t.Fatal("a client of a CA not yet trusted was let in")
	}

	ctx := t.Context()
	write := func(data []byte) {
		t.Helper()
		if err := harness.WriteFileAtomic(caFile, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(append(append([]byte{}, oldCA.PEM...), newCA.PEM...))
	if err := harness.Poll(ctx, 30*time.Second, func() error { return call(addr, serving, newCA) }); err != nil {
		t.Fatalf("the new CA is not let in during the overlap: %v", err)
	}
	if err := call(addr, serving, oldCA); err != nil {
		t.Errorf("the old CA is refused during the overlap: %v", err)
	}

	write(newCA.PEM)
	if err := harness.Poll(ctx, 30*time.Second, func() error {
		if err := call(addr, serving, oldCA); err == nil {
			return errors.New("the old CA is still let in")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := call(addr, serving, newCA); err != nil {
		t.Errorf("the new CA after the overlap: %v", err)
	}

	// A broken file never opens the door: the old CA stays out, the new one in.
	write([]byte("not a certificate"))
	for range 5 {
		if err := call(addr, serving, oldCA); err == nil {
			t.Fatal("a broken client CA file let the dropped CA in")
		}
		if err := call(addr, serving, newCA); err != nil {
			t.Fatalf("a broken client CA file shut out the last good CA: %v", err)
		}
	}
}

// TestSlowClientsAreCutOff: a client that opens a connection and never finishes its TLS
// handshake, or never finishes its request headers, is disconnected by the server rather than
// holding a connection for as long as it likes.
func TestSlowClientsAreCutOff(t *testing.T) {
	ca, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addr, _, serving := tlsServer(t, ca.PEM)
	crt, key, err := ca.ClientCert("kube-apiserver", 2)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serving.PEM)

	// closedByServer reads until the server closes the connection; the deadline is far beyond
	// the server's timeouts and only turns a server that never closes into a failure.
	closedByServer := func(conn net.Conn) error {
		if err := conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errors.New("the server kept the connection open")
		}
		return nil
	}

	t.Run("no TLS handshake", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := closedByServer(conn); err != nil {
			t.Error(err)
		}
	})
	t.Run("headers never finished", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		w := bufio.NewWriter(conn)
		fmt.Fprint(w, "POST /guard HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := closedByServer(conn); err != nil {
			t.Error(err)
		}
	})
}
