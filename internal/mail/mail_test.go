package mail

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

const resetLink = "https://app.example.com/password-reset/confirm?token=eyJwYXlsb2FkIjp7fQ-_x=="

func TestPasswordResetText(t *testing.T) {
	m := PasswordReset("ada@example.com", "Ada", "Gatehouse", resetLink, 60)
	if m.To != "ada@example.com" || m.Subject != "Password Reset Request" || !m.Secret {
		t.Errorf("To, Subject, Secret = %q, %q, %v", m.To, m.Subject, m.Secret)
	}
	if !strings.HasPrefix(m.Text, "Hello Ada,\n") {
		t.Errorf("text does not start with the greeting:\n%s", m.Text)
	}
	for _, want := range []string{
		"You requested a password reset for your Gatehouse account.",
		"\n" + resetLink + "\n",
		"This link will expire in 1 hour.",
		"If you did not request a password reset, please ignore this email.",
		"Best regards,\nThe Gatehouse Team",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	// The expiry note comes after the link, the signature last.
	if i, j := strings.Index(m.Text, resetLink), strings.Index(m.Text, "This link will expire"); i < 0 || j < i {
		t.Errorf("expiry note not after the link:\n%s", m.Text)
	}
	if !strings.HasSuffix(strings.TrimSpace(m.Text), "The Gatehouse Team") {
		t.Errorf("text does not end with the signature:\n%s", m.Text)
	}
}

func TestPasswordResetGreeting(t *testing.T) {
	tests := []struct {
		name, first, wantText, wantHTML string
	}{
		{"named", "Ada", "Hello Ada,\n", "<p>Hello Ada,</p>"},
		{"empty", "", "Hello,\n", "<p>Hello,</p>"},
		{"blank", "   ", "Hello,\n", "<p>Hello,</p>"},
		{"unicode", "Zoë", "Hello Zoë,\n", "<p>Hello Zoë,</p>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := PasswordReset("x@example.com", tc.first, "Gatehouse", resetLink, 60)
			if !strings.HasPrefix(m.Text, tc.wantText) {
				t.Errorf("text starts %q, want %q", firstLine(m.Text), tc.wantText)
			}
			if !strings.Contains(m.HTML, tc.wantHTML) {
				t.Errorf("HTML lacks %q:\n%s", tc.wantHTML, m.HTML)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestPasswordResetExpiryWording(t *testing.T) {
	tests := []struct {
		minutes int
		want    string
	}{
		{60, "This link will expire in 1 hour."},
		{120, "This link will expire in 2 hours."},
		{30, "This link will expire in 30 minutes."},
		{90, "This link will expire in 90 minutes."},
	}
	for _, tc := range tests {
		m := PasswordReset("x@example.com", "Ada", "Gatehouse", resetLink, tc.minutes)
		if !strings.Contains(m.Text, tc.want) {
			t.Errorf("%d minutes: text lacks %q", tc.minutes, tc.want)
		}
		htmlWant := strings.TrimSuffix(tc.want, ".")
		if !strings.Contains(m.HTML, htmlWant) {
			t.Errorf("%d minutes: HTML lacks %q", tc.minutes, htmlWant)
		}
	}
}

func TestPasswordResetHTML(t *testing.T) {
	m := PasswordReset("x@example.com", "Ada", "Acme", resetLink, 60)
	for _, want := range []string{
		"<h1>Password Reset</h1>",
		"Reset Password</a>",
		`href="` + resetLink + `"`,
		">" + resetLink + "</p>",
		"This link will expire in 1 hour",
		"The Acme Team",
	} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
		}
	}
}

func TestPasswordResetHTMLEscapesName(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	m := PasswordReset("x@example.com", evil, "Gatehouse", resetLink, 60)
	if strings.Contains(m.HTML, "<script") {
		t.Errorf("HTML contains the raw script tag:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, "Hello &lt;script&gt;alert(1)&lt;/script&gt;,") {
		t.Errorf("HTML lacks the escaped name:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, resetLink) {
		t.Errorf("HTML lacks the link:\n%s", m.HTML)
	}
	// The plain-text part is not HTML and keeps the name as typed.
	if !strings.HasPrefix(m.Text, "Hello "+evil+",") {
		t.Errorf("text greeting = %q", firstLine(m.Text))
	}
	m = PasswordReset("x@example.com", `"><img src=x onerror=alert(1)>`, "Gatehouse", resetLink, 60)
	if strings.Contains(m.HTML, "<img") {
		t.Errorf("HTML contains an injected tag:\n%s", m.HTML)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func TestLogSender(t *testing.T) {
	reset := PasswordReset("ada@example.com", "Ada", "Gatehouse", resetLink, 60)
	plain := Message{To: "bob@example.com", Subject: "Welcome", Text: "Welcome aboard, Bob."}
	tests := []struct {
		name       string
		production bool
		msg        Message
		wantBody   bool
	}{
		{"production secret: no body", true, reset, false},
		{"production non-secret: body", true, plain, true},
		{"development secret: body", false, reset, true},
		{"development non-secret: body", false, plain, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, buf := newLogger()
			if err := NewLog(logger, tc.production).Send(context.Background(), tc.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			out := buf.String()
			if !strings.Contains(out, tc.msg.To) || !strings.Contains(out, tc.msg.Subject) {
				t.Errorf("log lacks recipient or subject:\n%s", out)
			}
			// The text handler quotes the body; look for a distinctive part.
			marker := "Welcome aboard"
			if tc.msg.Secret {
				marker = "token=eyJwYXlsb2FkIjp7fQ"
			}
			if got := strings.Contains(out, marker); got != tc.wantBody {
				t.Errorf("body logged = %v, want %v:\n%s", got, tc.wantBody, out)
			}
			if tc.msg.Secret && !tc.wantBody && strings.Contains(out, "body=") {
				t.Errorf("a body attribute was logged for a secret message:\n%s", out)
			}
		})
	}
}

// chanSender is the process boundary: it hands each message to the test.
type chanSender struct {
	got  chan Message
	fail func(Message) error
}

func newChanSender(n int) *chanSender { return &chanSender{got: make(chan Message, n)} }

func (s *chanSender) Send(_ context.Context, m Message) error {
	if s.fail != nil {
		if err := s.fail(m); err != nil {
			return err
		}
	}
	s.got <- m
	return nil
}

func receive(t *testing.T, s *chanSender) Message {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(10 * time.Second): // a guard against hanging, not an assertion
		t.Fatal("no message delivered")
		return Message{}
	}
}

// runQueue starts q.Run and returns a stop function that cancels it and
// waits for it to return.
func runQueue(t *testing.T, q *Queue, workers int, drain time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.Run(ctx, workers, drain)
		close(done)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Queue.Run did not return after cancel")
		}
	}
}

func TestQueueDelivers(t *testing.T) {
	s := newChanSender(10)
	logger, logs := newLogger()
	q := NewQueue(s, logger, 10)
	stop := runQueue(t, q, 1, time.Minute)
	defer stop()

	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		q.Enqueue(Message{To: to, Subject: "Hi"})
	}
	for _, want := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if got := receive(t, s); got.To != want || got.Subject != "Hi" {
			t.Errorf("delivered %+v, want To %q", got, want)
		}
	}
	if out := logs.String(); out != "" {
		t.Errorf("unexpected log output:\n%s", out)
	}
}

func TestQueueDrainsOnShutdown(t *testing.T) {
	s := newChanSender(20)
	logger, logs := newLogger()
	q := NewQueue(s, logger, 20)
	for i := range 20 {
		q.Enqueue(Message{To: "user@example.com", Subject: string(rune('A' + i))})
	}
	// Shut down at once: everything queued must still be delivered before
	// Run returns.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx, 3, time.Minute)
	if n := len(s.got); n != 20 {
		t.Fatalf("%d of 20 queued messages delivered before Run returned", n)
	}
	seen := map[string]bool{}
	for range 20 {
		seen[(<-s.got).Subject] = true
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct messages delivered, want 20", len(seen))
	}

	// Enqueue after shutdown neither blocks nor panics, and is logged.
	q.Enqueue(Message{To: "late@example.com", Subject: "Late"})
	if len(s.got) != 0 {
		t.Error("a message enqueued after shutdown was delivered")
	}
	if out := logs.String(); !strings.Contains(out, "shut down") || !strings.Contains(out, "late@example.com") {
		t.Errorf("dropped message not logged:\n%s", out)
	}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	s := newChanSender(5)
	logger, logs := newLogger()
	q := NewQueue(s, logger, 1) // no workers yet: the buffer holds one
	q.Enqueue(Message{To: "first@example.com"})
	q.Enqueue(Message{To: "second@example.com"})
	if out := logs.String(); !strings.Contains(out, "full") || !strings.Contains(out, "second@example.com") {
		t.Errorf("overflow not logged:\n%s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx, 1, time.Minute)
	if n := len(s.got); n != 1 || (<-s.got).To != "first@example.com" {
		t.Errorf("delivered %d messages, want only the first", n)
	}
}

func TestQueueSurvivesFailingSender(t *testing.T) {
	s := newChanSender(10)
	s.fail = func(m Message) error {
		switch m.To {
		case "bounce@example.com":
			return errors.New("550 mailbox unavailable")
		case "panic@example.com":
			panic("sender exploded")
		}
		return nil
	}
	logger, logs := newLogger()
	q := NewQueue(s, logger, 10)
	stop := runQueue(t, q, 1, time.Minute)

	q.Enqueue(Message{To: "bounce@example.com", Subject: "One"})
	q.Enqueue(Message{To: "panic@example.com", Subject: "Two"})
	q.Enqueue(Message{To: "ok@example.com", Subject: "Three"})
	// With one worker, the third message arrives only after the first two
	// were handled: the worker survived both.
	if got := receive(t, s); got.To != "ok@example.com" {
		t.Errorf("delivered %+v, want ok@example.com", got)
	}
	stop()
	out := logs.String()
	for _, want := range []string{"email send failed", "bounce@example.com", "550 mailbox unavailable", "email send panicked", "panic@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestQueueDrainDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	blocking := senderFunc(func(ctx context.Context, m Message) error {
		<-release
		return nil
	})
	logger, logs := newLogger()
	q := NewQueue(blocking, logger, 2)
	q.Enqueue(Message{To: "stuck@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx, 1, 10*time.Millisecond) // must return although the send never ends
	if out := logs.String(); !strings.Contains(out, "not drained") {
		t.Errorf("drain timeout not logged:\n%s", out)
	}
}

type senderFunc func(context.Context, Message) error

func (f senderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }
