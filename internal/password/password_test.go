package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

const (
	msgLength  = "Password must be at least 12 characters long"
	msgTooLong = "Password must be at most 72 bytes long"
	msgCommon  = "Password is too common. Please choose a stronger password"
	clLower    = "at least one lowercase letter"
	clUpper    = "at least one uppercase letter"
	clDigit    = "at least one digit"
	clSpecial  = "at least one special character (!@#$%^&*()_+-=[]{}|;:,.<>?~`)"
)

func mustContain(classes ...string) string {
	return "Password must contain " + strings.Join(classes, ", ")
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		demo bool
		want string
	}{
		{"strong", "Correct-Horse-42", false, ""},
		{"exactly 12 characters", "Abcdefghi12!", false, ""},
		{"11 characters", "Abcdefgh12!", false, msgLength},
		{"empty", "", false, msgLength},
		// 11 code points but 22 bytes: length counts characters.
		{"length counts code points, not bytes", "Ééééééééé1!", false, msgLength},
		{"12 multibyte code points accepted", "Éééééééééé1!", false, ""},
		{"length checked before classes", "abc", false, msgLength},

		{"72 bytes accepted", "Aa1!" + strings.Repeat("x", 68), false, ""},
		{"73 bytes refused", "Aa1!" + strings.Repeat("x", 69), false, msgTooLong},
		{"over 72 bytes of multibyte runes", "Aa1!" + strings.Repeat("é", 35), false, msgTooLong},

		{"common password", "password1234", false, msgCommon},
		{"common list is case-insensitive", "PassWord1234", false, msgCommon},
		{"common list upper case", "PASSWORD1234", false, msgCommon},
		{"common checked before classes", "password1234", false, msgCommon},

		{"missing special only", "CorrectHorse42", false, mustContain(clSpecial)},
		{"missing digit only", "Correct-Horse!", false, mustContain(clDigit)},
		{"missing upper only", "correct-horse-42", false, mustContain(clUpper)},
		{"missing lower only", "CORRECT-HORSE-42", false, mustContain(clLower)},
		{"missing upper, digit, special", "abcdefghijkl", false, mustContain(clUpper, clDigit, clSpecial)},
		{"missing lower, upper, special", "123456789012345", false, mustContain(clLower, clUpper, clSpecial)},
		{"missing everything", strings.Repeat(" ", 12), false, mustContain(clLower, clUpper, clDigit, clSpecial)},
		{"missing lower and digit", "ABCDEFGHIJK!", false, mustContain(clLower, clDigit)},
		{"non-listed symbols are not special", "CorrectHorse42/€ \\'\"", false, mustContain(clSpecial)},

		{"Unicode upper and lower count", "ÉCOLEécole42!", false, ""},
		{"Cyrillic letters count", "ПарольПароль7#", false, ""},
		{"Greek lower only is missing upper", "αβγδεζηθικλμ1!", false, mustContain(clUpper)},
		{"Unicode digit counts", "Correct-Horse-٤", false, ""},

		{"Demo123! in demo mode", "Demo123!", true, ""},
		{"Admin123! in demo mode", "Admin123!", true, ""},
		{"Demo123! outside demo mode", "Demo123!", false, msgLength},
		{"Admin123! outside demo mode", "Admin123!", false, msgLength},
		{"demo exception is exact", "demo123!", true, msgLength},
		{"demo mode does not relax other passwords", "abcdefghijkl", true, mustContain(clUpper, clDigit, clSpecial)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Check(tc.pw, tc.demo); got != tc.want {
				t.Errorf("Check(%q, %v) = %q, want %q", tc.pw, tc.demo, got, tc.want)
			}
		})
	}
}

func TestCheckEverySpecialCharacter(t *testing.T) {
	for _, r := range Specials {
		pw := "CorrectHorse42" + string(r)
		if got := Check(pw, false); got != "" {
			t.Errorf("Check(%q) = %q, want accepted (%q is a listed special)", pw, got, r)
		}
	}
}

func bcryptConfig(cost int) config.Password {
	return config.Password{Algorithm: "bcrypt", BcryptCost: cost, Concurrency: 2, MaxWait: time.Second}
}

func argonConfig() config.Password {
	return config.Password{Algorithm: "argon2id", ArgonMemory: 1024, ArgonTime: 1, ArgonThreads: 1, Concurrency: 2, MaxWait: time.Second}
}

func newHasher(t *testing.T, cfg config.Password) *Hasher {
	t.Helper()
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", cfg, err)
	}
	return h
}

func hash(t *testing.T, h *Hasher, pw string) string {
	t.Helper()
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash(%q): %v", pw, err)
	}
	return enc
}

func TestHasherRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		cfg    config.Password
		prefix string
	}{
		{"bcrypt", bcryptConfig(4), "$2a$04$"},
		{"argon2id", argonConfig(), "$argon2id$v=19$m=1024,t=1,p=1$"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(t, tc.cfg)
			const pw = "Correct-Horse-42 ünïcode"
			enc := hash(t, h, pw)
			if !strings.HasPrefix(enc, tc.prefix) {
				t.Errorf("hash %q does not start with %q", enc, tc.prefix)
			}
			if strings.Contains(enc, pw) {
				t.Errorf("hash %q contains the password", enc)
			}
			if again := hash(t, h, pw); again == enc {
				t.Errorf("two hashes of the same password are equal (%q): no salt", enc)
			}

			rehash, err := h.Verify(ctx, enc, pw)
			if err != nil || rehash {
				t.Errorf("Verify(right password) = %v, %v; want false, nil", rehash, err)
			}
			for _, wrong := range []string{"Correct-Horse-43 ünïcode", "correct-horse-42 ünïcode", "", pw + " "} {
				rehash, err := h.Verify(ctx, enc, wrong)
				if !errors.Is(err, ErrMismatch) || rehash {
					t.Errorf("Verify(%q) = %v, %v; want false, ErrMismatch", wrong, rehash, err)
				}
			}
			hashes, verifies := h.Stats()
			if hashes != 2 || verifies != 5 {
				t.Errorf("Stats() = %d hashes, %d verifies; want 2, 5", hashes, verifies)
			}
		})
	}
}

func TestHasherEmptyHashDoesDummyWork(t *testing.T) {
	for name, cfg := range map[string]config.Password{"bcrypt": bcryptConfig(4), "argon2id": argonConfig()} {
		t.Run(name, func(t *testing.T) {
			h := newHasher(t, cfg)
			rehash, err := h.Verify(context.Background(), "", "anything at all")
			if !errors.Is(err, ErrMismatch) || rehash {
				t.Fatalf("Verify(empty hash) = %v, %v; want false, ErrMismatch", rehash, err)
			}
			// Even the dummy's own password must not match an empty hash.
			if _, err := h.Verify(context.Background(), "", "dummy-password-for-timing"); !errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify(empty hash, dummy password) = %v, want ErrMismatch", err)
			}
			if hashes, verifies := h.Stats(); hashes != 0 || verifies != 2 {
				t.Errorf("Stats() = %d hashes, %d verifies; want 0, 2", hashes, verifies)
			}
			if err := h.VerifyDummy(context.Background(), "whatever"); err != nil {
				t.Fatalf("VerifyDummy: %v", err)
			}
			if _, verifies := h.Stats(); verifies != 3 {
				t.Errorf("verifies after VerifyDummy = %d, want 3", verifies)
			}
		})
	}
}

func TestHasherDummyIsARealHash(t *testing.T) {
	for name, cfg := range map[string]config.Password{"bcrypt cost 4": bcryptConfig(4), "bcrypt cost 12": bcryptConfig(12), "argon2id": argonConfig()} {
		t.Run(name, func(t *testing.T) {
			h := newHasher(t, cfg)
			// A dummy that cannot be parsed would make the unknown-account
			// path fast, revealing which emails exist.
			switch {
			case strings.HasPrefix(h.dummy, "$2"):
				cost, err := bcrypt.Cost([]byte(h.dummy))
				if err != nil || cost != cfg.BcryptCost {
					t.Errorf("dummy %q: cost %d, %v; want cost %d", h.dummy, cost, err, cfg.BcryptCost)
				}
			case strings.HasPrefix(h.dummy, "$argon2id$"):
				p, err := parseArgon(h.dummy)
				if err != nil || p.memory != cfg.ArgonMemory || p.time != cfg.ArgonTime || p.threads != cfg.ArgonThreads {
					t.Errorf("dummy %q: %+v, %v", h.dummy, p, err)
				}
			default:
				t.Errorf("dummy %q is neither bcrypt nor argon2id", h.dummy)
			}
		})
	}
}

func TestHasherCrossAlgorithmRehash(t *testing.T) {
	ctx := context.Background()
	const pw = "Correct-Horse-42"
	bc := newHasher(t, bcryptConfig(4))
	ar := newHasher(t, argonConfig())

	rehash, err := ar.Verify(ctx, hash(t, bc, pw), pw)
	if err != nil || !rehash {
		t.Errorf("argon2id Hasher verifying a bcrypt hash = %v, %v; want true, nil", rehash, err)
	}
	rehash, err = bc.Verify(ctx, hash(t, ar, pw), pw)
	if err != nil || !rehash {
		t.Errorf("bcrypt Hasher verifying an argon2id hash = %v, %v; want true, nil", rehash, err)
	}
	// Wrong passwords still mismatch across algorithms, without a rehash.
	if rehash, err := ar.Verify(ctx, hash(t, bc, pw), "wrong"); !errors.Is(err, ErrMismatch) || rehash {
		t.Errorf("argon2id Hasher, bcrypt hash, wrong password = %v, %v; want false, ErrMismatch", rehash, err)
	}
	if rehash, err := bc.Verify(ctx, hash(t, ar, pw), "wrong"); !errors.Is(err, ErrMismatch) || rehash {
		t.Errorf("bcrypt Hasher, argon2id hash, wrong password = %v, %v; want false, ErrMismatch", rehash, err)
	}
}

func TestHasherRehashOnChangedSettings(t *testing.T) {
	ctx := context.Background()
	const pw = "Correct-Horse-42"
	tests := []struct {
		name       string
		from, to   config.Password
		wantRehash bool
	}{
		{"same bcrypt cost", bcryptConfig(4), bcryptConfig(4), false},
		{"bcrypt cost raised", bcryptConfig(4), bcryptConfig(5), true},
		{"bcrypt cost lowered", bcryptConfig(5), bcryptConfig(4), true},
		{"same argon2id settings", argonConfig(), argonConfig(), false},
		{"argon2id memory changed", argonConfig(), func() config.Password { c := argonConfig(); c.ArgonMemory = 2048; return c }(), true},
		{"argon2id time changed", argonConfig(), func() config.Password { c := argonConfig(); c.ArgonTime = 2; return c }(), true},
		{"argon2id threads changed", argonConfig(), func() config.Password { c := argonConfig(); c.ArgonThreads = 2; return c }(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := hash(t, newHasher(t, tc.from), pw)
			rehash, err := newHasher(t, tc.to).Verify(ctx, enc, pw)
			if err != nil || rehash != tc.wantRehash {
				t.Errorf("Verify = %v, %v; want %v, nil", rehash, err, tc.wantRehash)
			}
		})
	}
}

// The reference's hashes are "$2b$" (Python bcrypt); they must verify.
func TestHasherVerifiesReference2bHashes(t *testing.T) {
	const pw = "Correct-Horse-42"
	a, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(a), "$2a$") {
		t.Fatalf("bcrypt produced %q, expected a $2a$ hash to rewrite", a)
	}
	b := "$2b$" + strings.TrimPrefix(string(a), "$2a$")
	h := newHasher(t, bcryptConfig(4))
	rehash, err := h.Verify(context.Background(), b, pw)
	if err != nil || rehash {
		t.Errorf("Verify($2b$ cost-4 hash) = %v, %v; want false, nil", rehash, err)
	}
	if _, err := h.Verify(context.Background(), b, "Correct-Horse-43"); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify($2b$ hash, wrong password) = %v, want ErrMismatch", err)
	}
	if rehash, err := newHasher(t, bcryptConfig(5)).Verify(context.Background(), b, pw); err != nil || !rehash {
		t.Errorf("Verify($2b$ cost-4 hash) under cost 5 = %v, %v; want true, nil", rehash, err)
	}
}

func TestHasherMalformedHashes(t *testing.T) {
	good := hash(t, newHasher(t, argonConfig()), "Correct-Horse-42")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=...,t=...,p=..., salt, key
	salt, key := parts[4], parts[5]
	malformed := []string{
		"$argon2id$",
		"$argon2id$v=19",
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt,
		"$argon2id$v=18$m=1024,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=abc,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=4294967295,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1$!!notbase64!!$" + key,
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$!!notbase64!!",
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key + "$extra",
		"$argon2i$v=19$m=1024,t=1,p=1$" + salt + "$" + key,
		"$2a$04$short",
		"$2b$99$" + strings.Repeat("a", 53),
		"$2",
		"$",
		"plaintext-password",
		"Correct-Horse-42",
	}
	for _, h := range []*Hasher{newHasher(t, argonConfig()), newHasher(t, bcryptConfig(4))} {
		for _, enc := range malformed {
			rehash, err := h.Verify(context.Background(), enc, "Correct-Horse-42")
			if !errors.Is(err, ErrMismatch) || rehash {
				t.Errorf("%s Verify(%q) = %v, %v; want false, ErrMismatch", h.cfg.Algorithm, enc, rehash, err)
			}
		}
	}
}

func TestHasherRefusesOverlongPasswords(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, bcryptConfig(4))
	long := strings.Repeat("a", MaxBytes+1)
	if enc, err := h.Hash(ctx, long); err == nil {
		t.Fatalf("Hash(73 bytes) = %q, nil; want an error", enc)
	}
	if hashes, _ := h.Stats(); hashes != 0 {
		t.Errorf("Hash(73 bytes) did hashing work (%d)", hashes)
	}
	if _, err := h.Hash(ctx, strings.Repeat("a", MaxBytes)); err != nil {
		t.Errorf("Hash(72 bytes): %v", err)
	}
	// A bcrypt hash of the first 72 bytes must not accept a longer password
	// (the reference's bcrypt silently truncated).
	enc := hash(t, h, strings.Repeat("a", MaxBytes))
	if _, err := h.Verify(ctx, enc, long); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(72-byte hash, 73-byte password) = %v, want ErrMismatch", err)
	}
	ar := newHasher(t, argonConfig())
	if _, err := ar.Hash(ctx, long); err == nil {
		t.Errorf("argon2id Hash(73 bytes) succeeded, want an error")
	}
}

func TestNewHasher(t *testing.T) {
	if _, err := NewHasher(config.Password{Algorithm: "md5"}); err == nil {
		t.Error("NewHasher(md5) succeeded, want an error")
	}
	h, err := NewHasher(config.Password{Algorithm: "", BcryptCost: 4})
	if err != nil {
		t.Fatalf("NewHasher(default algorithm): %v", err)
	}
	if h.cfg.Algorithm != "bcrypt" || cap(h.slots) != 1 || h.cfg.MaxWait != 5*time.Second {
		t.Errorf("defaults: algorithm %q, slots %d, MaxWait %v; want bcrypt, 1, 5s", h.cfg.Algorithm, cap(h.slots), h.cfg.MaxWait)
	}
	if enc := hash(t, h, "Correct-Horse-42"); !strings.HasPrefix(enc, "$2a$04$") {
		t.Errorf("default algorithm hash %q, want bcrypt cost 4", enc)
	}
}

// waitHolding blocks until h's only slot is taken.
func waitHolding(t *testing.T, h *Hasher) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a guard against hanging, not an assertion
	for len(h.slots) < cap(h.slots) {
		if time.Now().After(deadline) {
			t.Fatal("the first caller never took the slot")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHasherBusyWhileSlowHashHoldsTheSlot(t *testing.T) {
	// Cost 12 takes long enough that the slot is certainly held while the
	// second caller waits its 1 ms.
	cfg := config.Password{Algorithm: "bcrypt", BcryptCost: 12, Concurrency: 1, MaxWait: time.Millisecond}
	h := newHasher(t, cfg)
	ctx := context.Background()

	first := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "Correct-Horse-42")
		first <- err
	}()
	waitHolding(t, h)

	_, err := h.Hash(ctx, "Another-Horse-43")
	if !errors.Is(err, ErrBusy) {
		t.Errorf("second Hash while the slot is held = %v, want ErrBusy", err)
	}
	if _, err := h.Verify(ctx, "$2a$04$abcdefghijklmnopqrstuu", "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify while the slot is held = %v, want ErrBusy", err)
	}
	if err := h.VerifyDummy(ctx, "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy while the slot is held = %v, want ErrBusy", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first Hash: %v", err)
	}
	if hashes, verifies := h.Stats(); hashes != 1 || verifies != 0 {
		t.Errorf("Stats() = %d, %d; want 1 hash and no verifies (the refused calls did no work)", hashes, verifies)
	}
	// The slot is free again.
	if _, err := h.Verify(ctx, "", "x"); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify after the slot was released = %v, want ErrMismatch", err)
	}
}

func TestHasherBusyIsAnAppError(t *testing.T) {
	if ErrBusy.RetryAfter <= 0 || ErrBusy.Code == "" {
		t.Errorf("ErrBusy = %+v, want a code and a Retry-After", ErrBusy)
	}
}

func TestHasherWaitsForAFreeSlot(t *testing.T) {
	cfg := bcryptConfig(4)
	cfg.Concurrency = 1
	cfg.MaxWait = time.Minute
	h := newHasher(t, cfg)

	h.slots <- struct{}{} // the test holds the only slot
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "Correct-Horse-42")
		done <- err
	}()
	// Give the caller ample time to (wrongly) run without the slot; a
	// correct Hasher never returns here, so this cannot flake.
	select {
	case err := <-done:
		t.Fatalf("Hash returned %v while the slot was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	if hashes, _ := h.Stats(); hashes != 0 {
		t.Fatalf("Hash did work (%d) while the slot was held", hashes)
	}
	<-h.slots // release
	if err := <-done; err != nil {
		t.Fatalf("Hash after the slot was released: %v", err)
	}
}

func TestHasherCancelledContext(t *testing.T) {
	cfg := bcryptConfig(4)
	cfg.Concurrency = 1
	cfg.MaxWait = time.Minute
	h := newHasher(t, cfg)

	t.Run("cancelled while waiting", func(t *testing.T) {
		h.slots <- struct{}{}
		defer func() { <-h.slots }()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := h.Hash(ctx, "Correct-Horse-42")
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Hash with cancelled context = %v, want context.Canceled", err)
		}
	})
	t.Run("deadline passed while waiting", func(t *testing.T) {
		h.slots <- struct{}{}
		defer func() { <-h.slots }()
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		if _, err := h.Verify(ctx, "", "x"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify with expired context = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled with a free slot", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before, _ := h.Stats()
		if _, err := h.Hash(ctx, "Correct-Horse-42"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash with cancelled context = %v, want context.Canceled", err)
		}
		if err := h.VerifyDummy(ctx, "x"); !errors.Is(err, context.Canceled) {
			t.Errorf("VerifyDummy with cancelled context = %v, want context.Canceled", err)
		}
		if after, _ := h.Stats(); after != before {
			t.Errorf("a cancelled request still hashed (%d → %d)", before, after)
		}
	})
}

// waitLog records what a Hasher's OnWait hook is told.
type waitLog struct {
	mu    sync.Mutex
	waits []time.Duration
	errs  []error
}

func (l *waitLog) hook(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits = append(l.waits, d)
	l.errs = append(l.errs, err)
}

func (l *waitLog) last(t *testing.T, n int) (time.Duration, error) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waits) != n {
		t.Fatalf("OnWait called %d times, want %d", len(l.waits), n)
	}
	return l.waits[n-1], l.errs[n-1]
}

func TestHasherReportsQueueWaits(t *testing.T) {
	cfg := bcryptConfig(4)
	cfg.Concurrency = 1
	cfg.MaxWait = time.Minute
	h := newHasher(t, cfg)
	var log waitLog
	h.OnWait = log.hook
	ctx := context.Background()

	if busy, total := h.Slots(); busy != 0 || total != 1 {
		t.Errorf("Slots() idle = %d, %d; want 0, 1", busy, total)
	}
	if _, err := h.Hash(ctx, "Correct-Horse-42"); err != nil {
		t.Fatal(err)
	}
	if d, err := log.last(t, 1); d != 0 || err != nil {
		t.Errorf("free slot: OnWait(%v, %v), want (0, nil)", d, err)
	}

	// A caller that waits for the slot reports how long.
	h.slots <- struct{}{}
	if busy, _ := h.Slots(); busy != 1 {
		t.Errorf("Slots() while held: busy = %d, want 1", busy)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.VerifyDummy(ctx, "x") }()
	time.Sleep(50 * time.Millisecond)
	<-h.slots
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, err := log.last(t, 2); d <= 0 || d > time.Since(start) || err != nil {
		t.Errorf("waited for the slot: OnWait(%v, %v), want (0 < wait <= %v, nil)", d, err, time.Since(start))
	}

	// A caller that gives up reports its context's error.
	h.slots <- struct{}{}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := h.Verify(cctx, "", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want context.DeadlineExceeded", err)
	}
	if d, err := log.last(t, 3); d <= 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller gave up: OnWait(%v, %v), want (> 0, DeadlineExceeded)", d, err)
	}
	<-h.slots

	// A full queue reports ErrBusy after MaxWait.
	cfg.MaxWait = 10 * time.Millisecond
	h2 := newHasher(t, cfg)
	h2.OnWait = log.hook
	h2.slots <- struct{}{}
	if _, err := h2.Hash(ctx, "Correct-Horse-42"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash = %v, want ErrBusy", err)
	}
	if d, err := log.last(t, 4); d < cfg.MaxWait || !errors.Is(err, ErrBusy) {
		t.Errorf("queue full: OnWait(%v, %v), want (>= %v, ErrBusy)", d, err, cfg.MaxWait)
	}
}
