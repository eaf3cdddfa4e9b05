package gitserver

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key is an OpenPGP key made for one test.
type Key struct {
	// Entity holds the private key; pass it as [Change.SignKey].
	Entity *openpgp.Entity
	// ArmoredPublic is the ASCII-armored public key, a keyring of one.
	ArmoredPublic string
}

// NewKey generates an Ed25519 OpenPGP signing key for name and email.
func NewKey(t testing.TB, name, email string) *Key {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity(name, "test key", email, cfg)
	if err != nil {
		t.Fatalf("generate OpenPGP key for %s: %v", email, err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatalf("armor public key of %s: %v", email, err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatalf("serialize public key of %s: %v", email, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("armor public key of %s: %v", email, err)
	}
	return &Key{Entity: e, ArmoredPublic: buf.String()}
}

// WritePublic writes the armored public key to a file in a temporary
// directory and returns its path, for use as a pinned keyring.
func (k *Key) WritePublic(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyring.asc")
	if err := os.WriteFile(p, []byte(k.ArmoredPublic), 0o600); err != nil {
		t.Fatalf("write public key: %v", err)
	}
	return p
}
