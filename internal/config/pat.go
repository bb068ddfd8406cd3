package config

// PAT is the policy for personal access tokens (docs/DECISIONS.md,
// "Personal access tokens").
type PAT struct {
	// DefaultExpiryDays is PAT_DEFAULT_EXPIRY_DAYS: the lifetime of a token
	// created without expires_in_days.
	DefaultExpiryDays int
	// MaxExpiryDays is PAT_MAX_EXPIRY_DAYS: the longest lifetime a token may
	// be given.
	MaxExpiryDays int
	// AllowNoExpiry is PAT_ALLOW_NO_EXPIRY: whether tokens that never expire
	// ("no_expiry": true) may be created.
	AllowNoExpiry bool
	// RevokeOnPasswordChange is PAT_REVOKE_ON_PASSWORD_CHANGE: a password
	// change, reset or set by an administrator revokes the user's tokens in
	// the same transaction.
	RevokeOnPasswordChange bool
}

// MaxPATExpiryDays bounds PAT_MAX_EXPIRY_DAYS (ten years): past that, use
// PAT_ALLOW_NO_EXPIRY.
const MaxPATExpiryDays = 3650

// loadPAT reads the personal-access-token settings.
func loadPAT(r *reader, c *Config) {
	p := &c.PAT
	p.MaxExpiryDays = r.integer("PAT_MAX_EXPIRY_DAYS", 365, 1, MaxPATExpiryDays)
	p.DefaultExpiryDays = r.integer("PAT_DEFAULT_EXPIRY_DAYS", min(90, p.MaxExpiryDays), 1, MaxPATExpiryDays)
	if p.DefaultExpiryDays > p.MaxExpiryDays {
		r.fail("PAT_DEFAULT_EXPIRY_DAYS", "must not exceed PAT_MAX_EXPIRY_DAYS (%d), got %d", p.MaxExpiryDays, p.DefaultExpiryDays)
	}
	p.AllowNoExpiry = r.boolean("PAT_ALLOW_NO_EXPIRY", false)
	p.RevokeOnPasswordChange = r.boolean("PAT_REVOKE_ON_PASSWORD_CHANGE", true)
}
