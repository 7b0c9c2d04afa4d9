package callback

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SecretSize is the length in bytes of a job's callback secret.
const SecretSize = 32

// LoadSecret returns the job's callback secret kept at path, creating it
// (random, mode 0600, synced) on first use: a resumed job keeps its
// secret, so the passthroughs of tasks submitted before still verify. It
// returns an error if the file cannot be read or created, or does not hold
// a secret.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != SecretSize {
			return nil, fmt.Errorf("callback secret %s: %d bytes, want %d (delete it to make a new one; callbacks of pending tasks then fail verification and polling finds them)", path, len(b), SecretSize)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, fmt.Errorf("callback secret %s: %w", path, err)
			}
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("callback secret: %w", err)
	}
	secret := make([]byte, SecretSize)
	if _, err := io.ReadFull(rand.Reader, secret); err != nil {
		return nil, fmt.Errorf("callback secret: %w", err)
	}
	// Written to a temporary name and renamed: a crash never leaves a
	// short secret behind.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("callback secret: %w", err)
	}
	_, err = f.Write(secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("callback secret: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() //nolint:errcheck // best effort: the secret is remade if lost, and polling covers its tasks
		d.Close()
	}
	return secret, nil
}

// Signer makes and checks passthroughs: "v1.NONCE.MAC", NONCE a decimal
// number naming one submission, MAC the base64url HMAC-SHA256 of the nonce
// under the job's secret. Safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a signer for secret (see [LoadSecret]).
func NewSigner(secret []byte) *Signer {
	return &Signer{key: bytes.Clone(secret)}
}

const ptVersion = "v1"

// New returns the passthrough of a new submission, for a random nonce.
func (s *Signer) New() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return s.Sign(binary.BigEndian.Uint64(b[:]))
}

// Sign returns the passthrough of the submission named nonce.
func (s *Signer) Sign(nonce uint64) string {
	n := strconv.FormatUint(nonce, 10)
	return ptVersion + "." + n + "." + base64.RawURLEncoding.EncodeToString(s.mac(n))
}

func (s *Signer) mac(nonce string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("decodo-batch callback " + ptVersion + " "))
	m.Write([]byte(nonce))
	return m.Sum(nil)
}

// Verify reports whether pt is a passthrough this job's secret made. The
// MACs are compared in constant time.
func (s *Signer) Verify(pt string) bool {
	v, rest, ok := strings.Cut(pt, ".")
	if !ok || v != ptVersion {
		return false
	}
	nonce, sig, ok := strings.Cut(rest, ".")
	if !ok || len(nonce) == 0 || len(nonce) > 20 {
		return false
	}
	if _, err := strconv.ParseUint(nonce, 10, 64); err != nil {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.mac(nonce))
}
