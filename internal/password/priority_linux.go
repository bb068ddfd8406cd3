package password

import "syscall"

// hashNice is the nice value of hashing threads: low enough that request
// threads (nice 0) get about nine tenths of a contended core.
const hashNice = 10

// lowerThreadPriority sets the calling thread's nice value (on Linux
// PRIO_PROCESS with a thread id applies to that thread only). Raising one's
// own nice value needs no privilege; a failure leaves the priority as it is.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), hashNice)
}
