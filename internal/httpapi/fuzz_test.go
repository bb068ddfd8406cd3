package httpapi

// Fuzz targets for the form and client-authentication parsers of the
// authorization server's protocol endpoints (token, revoke, introspect,
// consent). `go test` runs the seed corpus (and testdata/fuzz/<Target>);
// `go test -fuzz=Target` explores further.

import (
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

const formType = "application/x-www-form-urlencoded"

func multipartBody(boundary string, fields ...[2]string) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + f[0] + "\"\r\n\r\n" + f[1] + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.String()
}

// FuzzReadForm: arbitrary bodies, content types and query strings never
// panic; errors are RFC 6749 invalid_request (400, or 413 for a body over
// the limit); an accepted form has one value per parameter, comes from the
// body only (never the query string) and, when url-encoded, is exactly what
// the body says.
func FuzzReadForm(f *testing.F) {
	mp := "multipart/form-data; boundary=XyZ"
	seeds := []struct {
		contentType, query, body string
		limited                  bool
	}{
		{formType, "", "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&code_verifier=v", false},
		{formType + "; charset=UTF-8", "", "grant_type=refresh_token&refresh_token=r&client_id=c", false},
		{"APPLICATION/X-WWW-FORM-URLENCODED", "", "token=t&token_type_hint=access_token", false},
		{formType, "client_id=from-query", "grant_type=authorization_code&code=abc", false},
		{formType, "client_id=q", "client_id=body", false},
		{formType, "a;b", "grant_type=x", false},
		{formType, "", "code=a&code=b", false},
		{formType, "", "code=a&code=a", false},
		{formType, "", "code=&code=", false},
		{formType, "", "client_id=x&client_id=", false},
		{formType, "", "code=a&Code=b", false},
		{formType, "", "code=%zz", false},
		{formType, "", "a;b=c", false},
		{formType, "", "=&=&=", false},
		{formType, "", "&&&", false},
		{formType, "", "", false},
		{formType, "", "scope=openid+profile&state=%E2%9C%93", false},
		{formType, "", "state=\xff\xfe\x00", false},
		{formType, "", "code=" + strings.Repeat("A", 5000), false},
		{formType, "", "code=" + strings.Repeat("A", 5000), true},
		{formType, "", strings.Repeat("a=1&", 300), false},
		{"application/json", "", `{"grant_type":"authorization_code","code":"abc"}`, false},
		{"text/plain", "", "grant_type=authorization_code", false},
		{"", "", "grant_type=authorization_code", false},
		{"application/x-www-form-urlencoded;;;", "", "a=1", false},
		{"application/x-www-form-urlencoded; charset", "", "a=1", false},
		{"multipart/form-data", "", "a=1", false},
		{mp, "", multipartBody("XyZ", [2]string{"grant_type", "authorization_code"}, [2]string{"code", "abc"}), false},
		{mp, "", multipartBody("XyZ", [2]string{"code", "a"}, [2]string{"code", "b"}), false},
		{mp, "code=q", multipartBody("XyZ", [2]string{"grant_type", "x"}), false},
		{mp, "", "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nfile\r\n--XyZ--\r\n", false},
		{mp, "", "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated", false},
		{mp, "", "garbage", false},
		{mp, "", multipartBody("XyZ", [2]string{"code", strings.Repeat("B", 3000)}), true},
	}
	for _, s := range seeds {
		f.Add(s.contentType, s.query, s.body, s.limited)
	}
	f.Fuzz(func(t *testing.T, contentType, query, body string, limited bool) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/oauth/provider/token", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		if limited {
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1024)
		}
		form, err := readForm(r)
		if r.MultipartForm != nil {
			defer func() { _ = r.MultipartForm.RemoveAll() }()
		}
		if err != nil {
			var oe *oauth.Error
			if !errors.As(err, &oe) || oe.Code != "invalid_request" || (oe.Status != 400 && oe.Status != 413) {
				t.Fatalf("readForm error %#v, want invalid_request 400/413", err)
			}
			if oe.Status == 413 && (!limited || len(body) <= 1024) {
				t.Fatalf("413 for a %d-byte body (limited %v)", len(body), limited)
			}
			return
		}
		mt, _, _ := mime.ParseMediaType(contentType)
		if mt != formType && mt != "multipart/form-data" {
			t.Fatalf("accepted content type %q", contentType)
		}
		for k, vs := range form {
			if len(vs) != 1 {
				t.Fatalf("accepted repeated parameter %q = %q (body %q)", k, vs, body)
			}
		}
		if mt != formType {
			return
		}
		want, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("accepted the invalid body %q: %v", body, err)
		}
		if len(want) != len(form) {
			t.Fatalf("form %q, body says %q (query %q)", form, want, query)
		}
		for k, vs := range want {
			if len(vs) != 1 || form.Get(k) != vs[0] {
				t.Fatalf("form %q, body says %q (query %q)", form, want, query)
			}
		}
	})
}

// FuzzClientCredentials: arbitrary Authorization headers and form fields
// never panic; without a Basic header the form's credentials are used; with
// one, its RFC 6749 §2.3.1 form-url-encoded id and secret are used, and
// Conflict is set exactly when the form names a different client id.
func FuzzClientCredentials(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const (
		noHeader  = 0 // form only
		rawHeader = 1 // header as given
		encoded   = 2 // Basic with both parts form-url-encoded, as RFC 6749 §2.3.1 asks
		unescaped = 3 // Basic with the parts as they are (common in the wild)
	)
	seeds := []struct {
		header, formID, formSecret, basicID, basicSecret string
		mode                                             uint8
	}{
		{"", "client", "", "", "", noHeader},
		{"", "client", "secret", "", "", noHeader},
		{"", "", "", "client", "secret", encoded},
		{"", "client", "", "client", "secret", encoded},
		{"", "other", "", "client", "secret", encoded},
		{"", "client", "form-secret", "client", "basic-secret", encoded},
		{"", "", "", "a:b", "c:d", encoded},
		{"", "", "", "a+b", "p%20q", encoded},
		{"", "a b", "", "a+b", "s", unescaped},
		{"", "", "", "a%zz", "s%", unescaped},
		{"", "", "", "", "", encoded},
		{"", "x", "", "", "secret", encoded},
		{"", "", "", "ünïcödé", "\xff\xfe", encoded},
		{"", "", "", strings.Repeat("c", 3000), strings.Repeat("s", 3000), encoded},
		{"Basic " + b64("client:secret"), "", "", "", "", rawHeader},
		{"basic " + b64("client:secret"), "client", "", "", "", rawHeader},
		{"BASIC " + b64("client:secret"), "other", "", "", "", rawHeader},
		{"Basic " + b64("client"), "client", "", "", "", rawHeader},
		{"Basic " + b64(":"), "client", "", "", "", rawHeader},
		{"Basic !!!notbase64", "client", "", "", "", rawHeader},
		{"Basic ", "client", "", "", "", rawHeader},
		{"Basic", "client", "", "", "", rawHeader},
		{"Basic  " + b64("client:secret"), "", "", "", "", rawHeader},
		{"Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig", "client", "", "", "", rawHeader},
		{"Digest username=\"client\"", "client", "", "", "", rawHeader},
		{"Basic " + b64("client:secret") + ", Basic " + b64("other:x"), "", "", "", "", rawHeader},
		{"\xff\xfe", "client", "", "", "", rawHeader},
	}
	for _, s := range seeds {
		f.Add(s.header, s.formID, s.formSecret, s.basicID, s.basicSecret, s.mode)
	}
	f.Fuzz(func(t *testing.T, header, formID, formSecret, basicID, basicSecret string, mode uint8) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/oauth/provider/token", nil)
		switch mode % 4 {
		case rawHeader:
			r.Header["Authorization"] = []string{header}
		case encoded:
			r.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
		case unescaped:
			r.SetBasicAuth(basicID, basicSecret)
		}
		form := url.Values{}
		if formID != "" {
			form.Set("client_id", formID)
		}
		if formSecret != "" {
			form.Set("client_secret", formSecret)
		}
		cr := clientCredentials(r, form)

		hdrID, hdrSecret, isBasic := r.BasicAuth()
		if cr.HasBasic != isBasic {
			t.Fatalf("HasBasic = %v for header %q", cr.HasBasic, r.Header.Get("Authorization"))
		}
		if !isBasic {
			if cr.Conflict || cr.ClientID != formID || cr.Secret != formSecret {
				t.Fatalf("without Basic got %+v, want the form's %q/%q", cr, formID, formSecret)
			}
			return
		}
		// The id and secret the header carries, decoded as RFC 6749 §2.3.1
		// says (left as they are when they are not valid encodings).
		wantID, wantSecret := hdrID, hdrSecret
		if mode%4 == encoded {
			wantID, wantSecret = basicID, basicSecret
		} else {
			if v, err := url.QueryUnescape(hdrID); err == nil {
				wantID = v
			}
			if v, err := url.QueryUnescape(hdrSecret); err == nil {
				wantSecret = v
			}
		}
		conflict := formID != "" && formID != wantID
		if cr.Conflict != conflict {
			t.Fatalf("Conflict = %v with Basic id %q and form id %q", cr.Conflict, wantID, formID)
		}
		if !conflict && (cr.ClientID != wantID || cr.Secret != wantSecret) {
			t.Fatalf("got %q/%q, want the Basic credentials %q/%q", cr.ClientID, cr.Secret, wantID, wantSecret)
		}
	})
}
