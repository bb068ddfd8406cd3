package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// chromium finds a headless-capable Chromium. CI installs Debian's package
// and sets GATEHOUSE_REQUIRE_BROWSER=1, so a missing browser fails there.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GATEHOUSE_REQUIRE_BROWSER") == "1" {
		t.Fatal("GATEHOUSE_REQUIRE_BROWSER=1 but no Chromium is installed")
	}
	t.Skip("no Chromium installed (CI installs it and requires this test)")
	return ""
}

// TestBrowserLoginAndConsent drives a real headless Chromium through the
// built-in pages: the authorization endpoint sends the anonymous browser to
// the login page, back to authorization, to the consent page, and finally to
// the client's redirect URI with a code that the client exchanges.
func TestBrowserLoginAndConsent(t *testing.T) {
	bin := chromium(t)
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"))
	admin := e.Superuser("root@example.com")
	e.Register("browser.user@example.com")

	landed := make(chan url.Values, 1)
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case landed <- r.URL.Query():
		default:
		}
		_, _ = w.Write([]byte("<html><body><p id=done>client received the answer</p></body></html>"))
	}))
	defer client.Close()
	redirect := client.URL + "/callback"

	reg := e.Do(apitest.Request{Method: "POST", Path: "/api/v1/oauth/provider/clients", Token: admin.Access,
		Body: url.Values{"client_name": {"Browser Test App"}, "redirect_uris": {redirect}, "client_type": {"confidential"},
			"scopes": {"openid email profile"}}.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "").JSON(t)
	clientID, secret := reg["client_id"].(string), reg["client_secret"].(string)

	verifier := strings.Repeat("browser-verifier-", 4)
	sum := sha256.Sum256([]byte(verifier))
	authorize := e.Server.URL + "/api/v1/oauth/provider/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"openid email"},
		"state": {"browser-state"}, "nonce": {"browser-nonce"}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
	}.Encode()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	err := chromedp.Do(ctx,
		chromedp.Navigate(authorize),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "browser.user@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), apitest.Password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="approved"][value="true"]`)),
	)
	if err != nil {
		t.Fatalf("browser flow up to the consent page: %v", err)
	}
	consentText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[name="approved"][value="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)),
	); err != nil {
		t.Fatalf("browser flow after consent: %v", err)
	}
	finalURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(consentText, "Browser Test App") || !strings.Contains(consentText, "127.0.0.1") {
		t.Fatalf("the consent page does not name the client and the redirect host:\n%s", consentText)
	}
	if !strings.HasPrefix(finalURL, redirect) {
		t.Fatalf("the browser ended at %s, want the client's redirect URI", finalURL)
	}
	var q url.Values
	select {
	case q = <-landed:
	case <-time.After(5 * time.Second):
		t.Fatal("the client never received the redirect")
	}
	if q.Get("state") != "browser-state" || q.Get("code") == "" || q.Get("iss") == "" {
		t.Fatalf("redirect parameters %v", q)
	}

	tok := e.Do(apitest.Request{Method: "POST", Path: "/api/v1/oauth/provider/token",
		Body: url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect},
			"code_verifier": {verifier}, "client_id": {clientID}, "client_secret": {secret}}.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "").JSON(t)
	info := e.Do(apitest.Request{Method: "GET", Path: "/api/v1/oauth/provider/userinfo",
		Headers: map[string]string{"Authorization": "Bearer " + tok["access_token"].(string)}}).Expect(t, http.StatusOK, "").JSON(t)
	if info["email"] != "browser.user@example.com" {
		t.Fatalf("userinfo %v", info)
	}
}
