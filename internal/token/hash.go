package token

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashSecret returns the hex SHA-256 of a random secret (refresh-token jti,
// reset token, invitation token). Only these digests are stored: the secrets
// carry 256 bits of entropy, so a fast hash is enough and lookups stay
// indexable.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
