package main

import "golang.org/x/sys/unix"

// harden makes this process non-dumpable: /proc/<pid>/environ, mem, fd and
// maps become root's, so a step running under the same uid cannot read
// the server's or the worker's environment (STROEM__WORKER_TOKEN, secrets
// given as ref+env://) or memory. The steps a worker starts are dumpable
// again after exec; that is fine, their environment holds only what they
// were given. It also disables core dumps, which would hold the same.
func harden() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
