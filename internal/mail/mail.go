// Package mail sends Gatehouse's emails. Senders deliver one message (SMTP
// or the log); the Queue decouples requests from delivery so that sending
// never blocks nor fails a request: a failed send is logged, and the queue
// is drained on shutdown.
package mail

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// Message is one email with a plain-text and an HTML part.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Secret marks messages that carry a credential (a reset link): the log
	// sender never prints their body in production.
	Secret bool
}

// Sender delivers one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP delivers through an SMTP server with go-mail.
type SMTP struct {
	cfg config.Mail
}

// NewSMTP returns an SMTP sender.
func NewSMTP(cfg config.Mail) *SMTP { return &SMTP{cfg: cfg} }

// Send delivers m, opening one connection per message.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTimeout(s.cfg.Timeout)}
	switch s.cfg.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("to address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// Log writes messages to the log instead of sending them (no SMTP_HOST).
// Outside production the whole text part is logged so a developer can follow
// a reset link; in production only the recipient and subject are.
type Log struct {
	logger     *slog.Logger
	production bool
}

// NewLog returns a log sender.
func NewLog(logger *slog.Logger, production bool) *Log {
	return &Log{logger: logger, production: production}
}

// Send logs m.
func (l *Log) Send(ctx context.Context, m Message) error {
	if l.production && m.Secret {
		l.logger.InfoContext(ctx, "email not sent: no SMTP_HOST configured", "to", m.To, "subject", m.Subject)
		return nil
	}
	l.logger.InfoContext(ctx, "email (no SMTP_HOST configured, written to the log)", "to", m.To, "subject", m.Subject, "body", m.Text)
	return nil
}

// Queue sends messages in the background with a few workers.
type Queue struct {
	sender Sender
	logger *slog.Logger
	ch     chan Message
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// NewQueue returns a queue holding up to size pending messages.
func NewQueue(sender Sender, logger *slog.Logger, size int) *Queue {
	return &Queue{sender: sender, logger: logger, ch: make(chan Message, size)}
}

// Enqueue hands m to the workers without blocking. When the queue is full
// or closed the message is dropped and logged.
func (q *Queue) Enqueue(m Message) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.logger.Error("email dropped: mail queue is shut down", "to", m.To, "subject", m.Subject)
		return
	}
	select {
	case q.ch <- m:
	default:
		q.logger.Error("email dropped: mail queue is full", "to", m.To, "subject", m.Subject)
	}
}

// Run starts workers and blocks until ctx is done; then it stops accepting,
// delivers what is queued (bounded by drain) and returns.
func (q *Queue) Run(ctx context.Context, workers int, drain time.Duration) {
	for range workers {
		q.wg.Go(func() {
			for m := range q.ch {
				q.deliver(m)
			}
		})
	}
	<-ctx.Done()
	q.mu.Lock()
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		q.logger.Error("mail queue not drained before shutdown deadline")
	}
}

func (q *Queue) deliver(m Message) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			q.logger.Error("email send panicked", "to", m.To, "panic", r)
		}
	}()
	if err := q.sender.Send(ctx, m); err != nil {
		q.logger.Error("email send failed", "to", m.To, "subject", m.Subject, "err", err)
	}
}
