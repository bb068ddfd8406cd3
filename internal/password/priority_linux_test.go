package password

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// threadNice returns the calling thread's nice value.
func threadNice() (int, error) {
	// getpriority(2) returns 20 - nice, to stay positive.
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	return 20 - p, err
}

// threadNices returns the nice value of every thread of this process.
func threadNices(t *testing.T) map[string]int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command name (which is in parentheses); nice is
		// field 19 of stat, the 17th after the ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[p] = n
	}
	return out
}

func TestAtLowPriorityRunsOnALowerPriorityThreadAndDiscardsIt(t *testing.T) {
	outer, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	want := hashNice
	if outer > hashNice {
		want = outer // an unprivileged process cannot raise its priority again
	}
	var (
		mu     sync.Mutex
		inside []int
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			atLowPriority(func() {
				n, err := threadNice()
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				inside = append(inside, n)
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if len(inside) != 8 {
		t.Fatalf("f ran %d times, want 8", len(inside))
	}
	for _, n := range inside {
		if n != want {
			t.Fatalf("nice inside atLowPriority = %d, want %d (outside %d)", n, want, outer)
		}
	}
	// The lowered threads are gone: every thread left runs at the
	// process's own priority, so no request ever lands on one of them.
	if outer != want {
		if task := lingeringThread(t, want); task != "" {
			t.Errorf("thread %s still has nice %d after the hashes, want the process's %d", task, want, outer)
		}
	}
}

// lingeringThread waits up to two seconds for the threads at nice to end
// (a thread is discarded just after its goroutine returns) and returns one
// that did not. The main thread is the exception: the runtime cannot end it,
// so when a locked goroutine ends on it, it parks it for good instead, and
// it never runs anything again.
func lingeringThread(t *testing.T, nice int) string {
	t.Helper()
	mainThread := "/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/stat"
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		left := ""
		for task, n := range threadNices(t) {
			if n == nice && task != mainThread {
				left = task
			}
		}
		if left == "" || time.Now().After(deadline) {
			return left
		}
	}
}

// TestVerifyRunsAtLowPriority watches the process's threads while a slow
// verification runs: one of them must be at the hashing priority, and none
// may be left at it afterwards.
func TestVerifyRunsAtLowPriority(t *testing.T) {
	outer, err := threadNice()
	if err != nil || outer >= hashNice {
		t.Skipf("process nice %d (%v): a lowered thread cannot be told apart", outer, err)
	}
	h := newHasher(t, config.Password{Algorithm: "bcrypt", BcryptCost: 12, Concurrency: 1, MaxWait: time.Second})
	encoded, err := bcrypt.GenerateFromPassword([]byte("correct horse"), 12)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Verify(context.Background(), string(encoded), "correct horse")
		done <- err
	}()
	seen := false
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
			for _, n := range threadNices(t) {
				seen = seen || n == hashNice
			}
			time.Sleep(time.Millisecond)
		}
	}
	if !seen {
		t.Fatal("no thread at the hashing priority while a bcrypt of cost 12 ran")
	}
	if task := lingeringThread(t, hashNice); task != "" {
		t.Errorf("thread %s still at the hashing priority after the verification", task)
	}
}
