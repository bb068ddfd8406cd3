package config

import "testing"

func TestLoadPAT(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want PAT
	}{
		{"defaults", map[string]string{},
			PAT{DefaultExpiryDays: 90, MaxExpiryDays: 365, AllowNoExpiry: false, RevokeOnPasswordChange: true}},
		{"every setting", map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "7", "PAT_MAX_EXPIRY_DAYS": "30",
			"PAT_ALLOW_NO_EXPIRY": "true", "PAT_REVOKE_ON_PASSWORD_CHANGE": "false"},
			PAT{DefaultExpiryDays: 7, MaxExpiryDays: 30, AllowNoExpiry: true, RevokeOnPasswordChange: false}},
		{"a lower maximum lowers the unset default", map[string]string{"PAT_MAX_EXPIRY_DAYS": "30"},
			PAT{DefaultExpiryDays: 30, MaxExpiryDays: 30, RevokeOnPasswordChange: true}},
		{"default equal to the maximum", map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "3650", "PAT_MAX_EXPIRY_DAYS": "3650"},
			PAT{DefaultExpiryDays: 3650, MaxExpiryDays: 3650, RevokeOnPasswordChange: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, tc.env)
			if c.PAT != tc.want {
				t.Errorf("PAT = %+v, want %+v", c.PAT, tc.want)
			}
		})
	}

	bad := []struct {
		env       map[string]string
		variable  string
		fragments []string
	}{
		{map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "0"}, "PAT_DEFAULT_EXPIRY_DAYS", []string{"between 1 and 3650", `"0"`}},
		{map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "-5"}, "PAT_DEFAULT_EXPIRY_DAYS", []string{"between 1 and 3650"}},
		{map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "ninety"}, "PAT_DEFAULT_EXPIRY_DAYS", []string{"integer"}},
		{map[string]string{"PAT_MAX_EXPIRY_DAYS": "0"}, "PAT_MAX_EXPIRY_DAYS", []string{"between 1 and 3650"}},
		{map[string]string{"PAT_MAX_EXPIRY_DAYS": "3651"}, "PAT_MAX_EXPIRY_DAYS", []string{"between 1 and 3650"}},
		{map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "400"}, "PAT_DEFAULT_EXPIRY_DAYS", []string{"must not exceed PAT_MAX_EXPIRY_DAYS (365)", "400"}},
		{map[string]string{"PAT_DEFAULT_EXPIRY_DAYS": "31", "PAT_MAX_EXPIRY_DAYS": "30"}, "PAT_DEFAULT_EXPIRY_DAYS", []string{"(30)"}},
		{map[string]string{"PAT_ALLOW_NO_EXPIRY": "sometimes"}, "PAT_ALLOW_NO_EXPIRY", []string{"boolean"}},
		{map[string]string{"PAT_REVOKE_ON_PASSWORD_CHANGE": "2"}, "PAT_REVOKE_ON_PASSWORD_CHANGE", []string{"boolean"}},
	}
	for _, tc := range bad {
		wantProblem(t, loadErr(t, tc.env), tc.variable, tc.fragments...)
	}

	// Every PAT problem is reported at once, with the others'.
	msg := loadErr(t, map[string]string{"PAT_MAX_EXPIRY_DAYS": "x", "PAT_ALLOW_NO_EXPIRY": "x", "LOG_LEVEL": "loud"})
	for _, name := range []string{"PAT_MAX_EXPIRY_DAYS", "PAT_ALLOW_NO_EXPIRY", "LOG_LEVEL"} {
		wantProblem(t, msg, name)
	}
}
