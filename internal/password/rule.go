package password

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinLength is the minimum number of characters (Unicode code points).
const MinLength = 12

// Specials are the special characters the rule accepts.
const Specials = "!@#$%^&*()_+-=[]{}|;:,.<>?~`"

var common = []string{
	"password", "password1", "password123", "password1234", "admin", "admin123",
	"admin1234", "welcome", "welcome1", "welcome123", "qwerty", "qwerty123", "12345678",
	"123456789", "1234567890", "letmein", "letmein1", "letmein123", "monkey123",
	"dragon123", "passw0rd", "p@ssw0rd", "p@ssword",
}

// Check applies the password rule of reference §4.5 (plus the 72-byte
// ceiling) and returns the problem, or "" when pw is acceptable. In demo mode
// the two demo passwords are accepted verbatim, as in the reference.
func Check(pw string, demo bool) string {
	if demo && (pw == "Demo123!" || pw == "Admin123!") {
		return ""
	}
	if utf8.RuneCountInString(pw) < MinLength {
		return fmt.Sprintf("Password must be at least %d characters long", MinLength)
	}
	if len(pw) > MaxBytes {
		return fmt.Sprintf("Password must be at most %d bytes long", MaxBytes)
	}
	if slices.Contains(common, strings.ToLower(pw)) {
		return "Password is too common. Please choose a stronger password"
	}
	var lower, upper, digit, special bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case strings.ContainsRune(Specials, r):
			special = true
		}
	}
	var missing []string
	if !lower {
		missing = append(missing, "at least one lowercase letter")
	}
	if !upper {
		missing = append(missing, "at least one uppercase letter")
	}
	if !digit {
		missing = append(missing, "at least one digit")
	}
	if !special {
		missing = append(missing, "at least one special character ("+Specials+")")
	}
	if len(missing) > 0 {
		return "Password must contain " + strings.Join(missing, ", ")
	}
	return ""
}
