package auth

import "crypto/subtle"

// secureEqual compares two secrets (or digests) in constant time.
func secureEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
