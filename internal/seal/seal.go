// Package seal encrypts small secrets for storage (provider tokens of
// linked social accounts, the authorization server's private keys, PKCE
// verifiers of pending logins) with AES-256-GCM under a key derived from
// SECRET_KEY. Every instance sharing SECRET_KEY can open what another sealed.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// prefix versions the format, so the scheme can change without ambiguity.
const prefix = "v1:"

// ErrCorrupt is returned for text that was not sealed with this key.
var ErrCorrupt = errors.New("sealed value cannot be opened")

// Box seals and opens values for one purpose.
type Box struct {
	aead cipher.AEAD
}

// New derives a key for purpose (e.g. "provider-tokens") from secret. Boxes
// for different purposes cannot open each other's values.
func New(secret, purpose string) (*Box, error) {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "gatehouse seal v1 "+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; "" stays "" (nothing to protect).
func (b *Box) Seal(plaintext string) string {
	if plaintext == "" {
		return ""
	}
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a value made by Seal with the same secret and purpose.
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrCorrupt
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", ErrCorrupt
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:n], data[n:], nil)
	if err != nil {
		return "", ErrCorrupt
	}
	return string(plain), nil
}
