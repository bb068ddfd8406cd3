package password

import "runtime"

// atLowPriority runs f on an operating-system thread of its own whose
// scheduling priority is lowered (nice 10 on Linux; elsewhere the priority
// stays). Password hashes are the only long computations of the service: a
// bcrypt at cost 12 takes a quarter of a second of a core. Run on ordinary
// goroutines, as many hashes as there are cores fill every processor Go has,
// and a bearer request waits for the scheduler to preempt one (up to 10 ms) —
// logins then starved every other request. On threads of their own at a lower
// priority (the server gives Go as many more processors as it runs hashes at
// once, see cmd/gatehouse), the kernel lets request threads run first and
// hashes still get every idle cycle.
//
// The goroutine stays locked to its thread and ends without unlocking it, so
// the runtime discards the thread and its lowered priority with it; making a
// thread costs microseconds next to a hash.
func atLowPriority(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		lowerThreadPriority()
		f()
	}()
	<-done
}
