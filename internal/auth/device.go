package auth

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mileusna/useragent"
)

// Device is what a login records about the client (reference §4.4).
type Device struct {
	UserAgent string
	DeviceID  string // X-Device-Id
	IP        string // client IP after the trusted-proxy rule
	// Fallback names the device when the User-Agent says nothing useful,
	// e.g. "OAuth (github)" for social logins.
	Fallback string
}

// Column limits of user_sessions; longer values are truncated, never
// allowed to fail the login (fix 23).
const (
	maxDeviceName = 255
	maxDeviceID   = 255
	maxIP         = 45
	maxUserAgent  = 500
)

var androidModel = regexp.MustCompile(`android.*;\s*([^)]+)\s*build`)

// crosToken matches Chrome OS's "CrOS" token as a word, so that "cros" inside
// another word ("Microsoft-CryptoAPI") does not name a Chromebook.
var crosToken = regexp.MustCompile(`\bcros\b`)

// DeviceName names a device from its User-Agent the way the reference does
// ("Chrome on Mac", "iPhone", "Android (Sm-G991B)"), with the browser and OS
// detected by a maintained parser.
func DeviceName(raw, fallback string) string {
	if strings.TrimSpace(raw) == "" {
		if fallback != "" {
			return fallback
		}
		return "Unknown device"
	}
	l := strings.ToLower(raw)
	ua := useragent.Parse(raw)
	browser := browserName(ua, l)
	on := func(platform, alone string) string {
		if browser != "" {
			return browser + " on " + platform
		}
		return alone
	}
	switch {
	case strings.Contains(l, "iphone"):
		return "iPhone"
	case strings.Contains(l, "ipad"):
		return "iPad"
	case strings.Contains(l, "android"):
		if m := androidModel.FindStringSubmatch(l); m != nil {
			return "Android (" + pyTitle(strings.TrimSpace(m[1])) + ")"
		}
		return "Android device"
	case strings.Contains(l, "windows phone"):
		return "Windows Phone"
	case strings.Contains(l, "tablet"):
		return "Tablet"
	case strings.Contains(l, "smart-tv"), strings.Contains(l, "smarttv"):
		return "Smart TV"
	case strings.Contains(l, "playstation"):
		return "PlayStation"
	case strings.Contains(l, "xbox"):
		return "Xbox"
	case strings.Contains(l, "nintendo"):
		return "Nintendo"
	case ua.OS == useragent.MacOS || strings.Contains(l, "macintosh") || strings.Contains(l, "mac os x"):
		return on("Mac", "Mac")
	case ua.OS == useragent.Windows || strings.Contains(l, "windows"):
		return on("Windows", "Windows PC")
	case ua.OS == useragent.ChromeOS || crosToken.MatchString(l):
		return "Chromebook"
	case ua.OS == useragent.Linux || strings.Contains(l, "linux"):
		return on("Linux", "Linux")
	case browser != "":
		return browser
	case fallback != "":
		return fallback
	case ua.Name != "":
		// Non-browser clients (curl, SDKs): their own name is the best label.
		return truncate(ua.Name, maxDeviceName)
	}
	return "Unknown device"
}

// browserName returns the reference's browser label for the UA.
func browserName(ua useragent.UserAgent, l string) string {
	switch {
	case ua.Name == useragent.Edge || strings.Contains(l, "edg/") || strings.Contains(l, "edge/"):
		return "Edge"
	case ua.Name == useragent.Opera || strings.Contains(l, "opr/") || strings.Contains(l, "opera"):
		return "Opera"
	case strings.Contains(l, "chrome/"):
		return "Chrome"
	case strings.Contains(l, "safari/"):
		return "Safari"
	case strings.Contains(l, "firefox/"):
		return "Firefox"
	case ua.Name == useragent.InternetExplorer || strings.Contains(l, "msie") || strings.Contains(l, "trident/"):
		return "Internet Explorer"
	}
	return ""
}

// pyTitle title-cases like Python's str.title: a letter after a non-letter
// is upper-cased, every other letter lower-cased ("sm-g991b" → "Sm-G991B").
func pyTitle(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		if unicode.IsLetter(r) {
			if prevLetter {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteRune(unicode.ToUpper(r))
			}
			prevLetter = true
			continue
		}
		b.WriteRune(r)
		prevLetter = false
	}
	return b.String()
}

// truncate makes a client-supplied header value storable and cuts it to
// at most n bytes without splitting a UTF-8 sequence: bytes that are not
// UTF-8 become U+FFFD and NUL characters go, since PostgreSQL stores
// neither in a text column (SQLite would, and the engines must agree). A
// device field never fails a login (fix 23).
func truncate(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// nullable returns nil for an empty string.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
