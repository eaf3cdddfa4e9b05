package source

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// verifyCommit checks commit's OpenPGP signature against the keyrings in
// files and returns the key ID of the signing key. It returns an error
// wrapping [ErrUnsigned] or [ErrUntrusted] when the commit must be refused,
// and a plain error when a keyring is unusable.
func verifyCommit(commit *object.Commit, files []string) (string, error) {
	keyrings := make([]string, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read keyring %s: %w", f, err)
		}
		if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(b))); err != nil {
			return "", fmt.Errorf("parse keyring %s: %w", f, err)
		}
		keyrings = append(keyrings, string(b))
	}
	if strings.TrimSpace(commit.PGPSignature) == "" {
		return "", fmt.Errorf("verify commit %s: %w", commit.Hash, ErrUnsigned)
	}
	var errs []error
	for i, k := range keyrings {
		if signer, err := commit.Verify(k); err == nil {
			return signer.PrimaryKey.KeyIdString(), nil
		} else {
			errs = append(errs, fmt.Errorf("keyring %s: %w", files[i], err))
		}
	}
	return "", fmt.Errorf("verify commit %s: %w: %w", commit.Hash, ErrUntrusted, errors.Join(errs...))
}
