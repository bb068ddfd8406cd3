package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Real-world User-Agent strings.
const (
	uaIPhoneSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	uaIPhoneChrome  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.101 Mobile/15E148 Safari/604.1"
	uaIPad          = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	uaAndroidBuild  = "Mozilla/5.0 (Linux; Android 11; SM-G991B Build/RP1A.200720.012) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0.4430.210 Mobile Safari/537.36"
	uaAndroidOld    = "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30"
	uaAndroidNexus  = "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 7 Build/KOT49H) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/34.0.1847.114 Safari/537.36"
	uaDalvikPixel   = "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7a Build/TQ3A.230901.001)"
	uaAndroidNoMod  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
	uaAndroidTablet = "Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0"
	uaWindowsPhone  = "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)"
	uaFirefoxOSTab  = "Mozilla/5.0 (Tablet; rv:26.0) Gecko/26.0 Firefox/26.0"
	uaTizenTV       = "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36"
	uaWebOSTV       = "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager"
	uaPS5           = "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)"
	uaPS4           = "Mozilla/5.0 (PlayStation 4 3.11) AppleWebKit/537.73 (KHTML, like Gecko)"
	uaXbox          = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041"
	uaSwitch        = "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393"
	uaChromeMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaSafariMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
	uaFirefoxMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0"
	uaFirefoxWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
	uaEdgeWin       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"
	uaEdgeLegacyWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.18363"
	uaChromeWin     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaOperaWin      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0"
	uaIE11Win       = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"
	uaOperaLinux    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0"
	uaOperaPresto   = "Opera/9.80 (X11; Linux i686; Ubuntu/14.10) Presto/2.12.388 Version/12.16"
	uaFirefoxLinux  = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
	uaChromeLinux   = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaChromebook    = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaFirefoxBSD    = "Mozilla/5.0 (X11; FreeBSD amd64; rv:121.0) Gecko/20100101 Firefox/121.0"
	uaChromeNoOS    = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

func TestDeviceName(t *testing.T) {
	tests := []struct {
		name, ua, want string
	}{
		{"empty", "", "Unknown device"},
		{"blank", "   \t", "Unknown device"},

		{"iPhone Safari", uaIPhoneSafari, "iPhone"},
		{"iPhone Chrome", uaIPhoneChrome, "iPhone"},
		{"iPad", uaIPad, "iPad"},

		{"Android with model", uaAndroidBuild, "Android (Sm-G991B)"},
		{"Android with locale and model", uaAndroidOld, "Android (Lg-L160L)"},
		{"Android model with space", uaAndroidNexus, "Android (Nexus 7)"},
		{"Android model title-cased after a digit", uaDalvikPixel, "Android (Pixel 7A)"},
		{"Android without model", uaAndroidNoMod, "Android device"},
		{"Android wins over tablet", uaAndroidTablet, "Android device"},

		{"Windows Phone", uaWindowsPhone, "Windows Phone"},
		{"Tablet", uaFirefoxOSTab, "Tablet"},
		{"Smart TV smart-tv", uaTizenTV, "Smart TV"},
		{"Smart TV smarttv", uaWebOSTV, "Smart TV"},
		{"PlayStation 5", uaPS5, "PlayStation"},
		{"PlayStation 4", uaPS4, "PlayStation"},
		{"Xbox wins over Windows and Edge", uaXbox, "Xbox"},
		{"Nintendo", uaSwitch, "Nintendo"},

		{"Chrome on Mac", uaChromeMac, "Chrome on Mac"},
		{"Safari on Mac", uaSafariMac, "Safari on Mac"},
		{"Firefox on Mac", uaFirefoxMac, "Firefox on Mac"},
		{"Mac without browser", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1)", "Mac"},

		{"Firefox on Windows", uaFirefoxWin, "Firefox on Windows"},
		{"Edge (Chromium) on Windows", uaEdgeWin, "Edge on Windows"},
		{"Edge (legacy) on Windows", uaEdgeLegacyWin, "Edge on Windows"},
		{"Chrome on Windows", uaChromeWin, "Chrome on Windows"},
		{"Opera on Windows", uaOperaWin, "Opera on Windows"},
		{"Internet Explorer on Windows", uaIE11Win, "Internet Explorer on Windows"},
		{"Windows without browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Windows PC"},

		{"Opera on Linux", uaOperaLinux, "Opera on Linux"},
		{"Opera Presto on Linux", uaOperaPresto, "Opera on Linux"},
		{"Firefox on Linux", uaFirefoxLinux, "Firefox on Linux"},
		{"Chrome on Linux", uaChromeLinux, "Chrome on Linux"},
		{"Linux without browser", "Mozilla/5.0 (X11; Linux x86_64)", "Linux"},

		{"Chromebook", uaChromebook, "Chromebook"},

		{"browser alone, unknown OS", uaFirefoxBSD, "Firefox"},
		{"browser alone, no OS", uaChromeNoOS, "Chrome"},

		{"curl", "curl/8.4.0", "curl"},
		{"python-requests", "python-requests/2.31.0", "python-requests"},
		{"Go client", "Go-http-client/1.1", "Go-http-client"},
		{"Postman", "PostmanRuntime/7.36.0", "PostmanRuntime"},
		{"okhttp", "okhttp/4.12.0", "okhttp"},
		// "cros" inside "Microsoft" is not Chrome OS.
		{"Microsoft client is not a Chromebook", "Microsoft-WebDAV-MiniRedir/10.0.19045", "Microsoft-WebDAV-MiniRedir"},
		{"Microsoft CryptoAPI is not a Chromebook", "Microsoft-CryptoAPI/10.0", "Microsoft-CryptoAPI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeviceName(tc.ua, ""); got != tc.want {
				t.Errorf("DeviceName(%q, \"\") = %q, want %q", tc.ua, got, tc.want)
			}
		})
	}
}

func TestDeviceNameCaseInsensitive(t *testing.T) {
	tests := []struct{ ua, want string }{
		{strings.ToUpper(uaIPhoneSafari), "iPhone"},
		{strings.ToUpper(uaAndroidBuild), "Android (Sm-G991B)"},
		{strings.ToLower(uaEdgeWin), "Edge on Windows"},
		{strings.ToLower(uaChromeMac), "Chrome on Mac"},
	}
	for _, tc := range tests {
		if got := DeviceName(tc.ua, ""); got != tc.want {
			t.Errorf("DeviceName(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

func TestDeviceNameFallback(t *testing.T) {
	const fb = "OAuth (github)"
	tests := []struct {
		name, ua, want string
	}{
		{"empty UA uses fallback", "", fb},
		{"blank UA uses fallback", "  ", fb},
		{"client name only: fallback preferred", "curl/8.4.0", fb},
		{"unknown UA uses fallback", "Go-http-client/1.1", fb},
		{"browser on OS ignores fallback", uaChromeMac, "Chrome on Mac"},
		{"OS without browser ignores fallback", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Windows PC"},
		{"mobile device ignores fallback", uaIPhoneSafari, "iPhone"},
		{"browser alone ignores fallback", uaFirefoxBSD, "Firefox"},
		{"Android ignores fallback", uaAndroidNoMod, "Android device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeviceName(tc.ua, fb); got != tc.want {
				t.Errorf("DeviceName(%q, %q) = %q, want %q", tc.ua, fb, got, tc.want)
			}
		})
	}
}

func TestDeviceNameLongClientNameFitsColumn(t *testing.T) {
	ua := strings.Repeat("é", 300) + "/1.0" // 600 bytes of name
	got := DeviceName(ua, "")
	if len(got) > maxDeviceName {
		t.Fatalf("len(DeviceName) = %d bytes, want <= %d", len(got), maxDeviceName)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("DeviceName returned invalid UTF-8: %q", got)
	}
	if got == "" || got == "Unknown device" {
		t.Fatalf("DeviceName = %q, want the (truncated) client name", got)
	}
}

func TestPyTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sm-g991b", "Sm-G991B"},
		{"SM-G991B", "Sm-G991B"},
		{"nexus 7", "Nexus 7"},
		{"pixel 7a", "Pixel 7A"},
		{"redmi note 8 pro", "Redmi Note 8 Pro"},
		{"o'neil", "O'Neil"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := pyTitle(tc.in); got != tc.want {
			t.Errorf("pyTitle(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short kept", "abc", 5, "abc"},
		{"exact kept", "abcde", 5, "abcde"},
		{"ascii cut", "abcdef", 3, "abc"},
		{"zero", "abc", 0, ""},
		{"before 2-byte rune", "aé", 2, "a"},   // é is 2 bytes: a|c3 a9
		{"after 2-byte rune", "aéb", 3, "aé"},  // cut lands on b
		{"inside 3-byte rune", "ab€", 4, "ab"}, // € is 3 bytes
		{"inside 4-byte rune", "x😀y", 4, "x"},  // 😀 is 4 bytes
		{"whole 4-byte rune", "x😀y", 5, "x😀"},  // cut lands on y
		{"first rune too long", "😀", 3, ""},    // nothing fits
		{"cjk", "日本語テキスト", 10, "日本語"},          // 3 bytes each
		// Not storable in PostgreSQL text: replaced or dropped.
		{"invalid UTF-8", "Bot\xff\xfe/1", 20, "Bot\uFFFD/1"},
		{"NUL", "a\x00b", 5, "ab"},
		{"invalid, then cut", "\xffabc", 4, "\uFFFDa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := truncate(tc.s, tc.n); got != tc.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
		})
	}
}

// TestTruncateEveryCut checks the invariants at every possible limit: the
// result is a prefix, valid UTF-8, within the limit, and loses less than one
// rune.
func TestTruncateEveryCut(t *testing.T) {
	s := "a€😀é日b" + strings.Repeat("ü", 3)
	for n := 0; n <= len(s)+2; n++ {
		got := truncate(s, n)
		if !strings.HasPrefix(s, got) {
			t.Fatalf("truncate(%q, %d) = %q, not a prefix", s, n, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("truncate(%q, %d) = %q, splits a UTF-8 sequence", s, n, got)
		}
		limit := min(n, len(s))
		if len(got) > limit {
			t.Fatalf("truncate(%q, %d) is %d bytes, over the limit", s, n, len(got))
		}
		if limit-len(got) >= utf8.UTFMax {
			t.Fatalf("truncate(%q, %d) = %q dropped a whole rune it could keep", s, n, got)
		}
	}
}

func TestTruncateDeviceColumns(t *testing.T) {
	ua := strings.Repeat("ä", 400) // 800 bytes
	got := truncate(ua, maxUserAgent)
	if len(got) != maxUserAgent || !utf8.ValidString(got) {
		t.Fatalf("truncate(800-byte UA, %d) = %d bytes, valid=%v; want %d valid bytes", maxUserAgent, len(got), utf8.ValidString(got), maxUserAgent)
	}
	ip := strings.Repeat("f", 100)
	if got := truncate(ip, maxIP); got != strings.Repeat("f", maxIP) {
		t.Fatalf("truncate(ip, %d) = %q", maxIP, got)
	}
}

func TestNullable(t *testing.T) {
	if p := nullable(""); p != nil {
		t.Errorf("nullable(\"\") = %q, want nil", *p)
	}
	if p := nullable("x"); p == nil || *p != "x" {
		t.Errorf("nullable(\"x\") = %v, want pointer to \"x\"", p)
	}
}
