package actors

import (
	"sync"
	"time"
)

// goPool runs functions on goroutines that outlive them (issue 23). The
// actors start a goroutine for every transition (JobActor.flush), every
// claim off the Dispatcher's goroutine, and — protoactor's default
// dispatcher — every time an idle actor's mailbox gets a message. A new
// goroutine starts with a small stack and grows it by copying as the
// transition goes down through pgx: runtime.copystack was 7 % of the
// server's CPU in a chain of one-step hops. A goroutine of the pool keeps
// its grown stack between functions (until the garbage collector shrinks a
// stack left mostly unused) and waits up to goPoolIdle for the next one
// before it exits, so an idle server holds none; a stopped pool's exit at
// once (Orchestrator.Stop), and it runs later functions on goroutines of
// their own.
//
// It is also a protoactor Dispatcher (Schedule, Throughput), given to the
// actors' Props: a mailbox's run is such a function.
type goPool struct {
	work chan func()
	stop chan struct{} // closed by close
	once sync.Once
}

// goPoolIdle is how long a pooled goroutine waits for work before it
// exits.
const goPoolIdle = 5 * time.Second

// mailboxThroughput is how many messages a mailbox processes before it
// yields (protoactor's default, 300).
const mailboxThroughput = 300

func newGoPool() *goPool { return &goPool{work: make(chan func()), stop: make(chan struct{})} }

// close makes the idle goroutines exit, and every later one as soon as its
// function returns.
func (p *goPool) close() { p.once.Do(func() { close(p.stop) }) }

// Go runs fn on an idle pooled goroutine, or on a new one (which joins the
// pool when fn returns). It never waits for one to become idle.
func (p *goPool) Go(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.run(fn)
	}
}

func (p *goPool) run(fn func()) {
	idle := time.NewTimer(goPoolIdle)
	defer idle.Stop()
	for {
		fn()
		fn = nil // not kept alive while waiting
		idle.Reset(goPoolIdle)
		select {
		case fn = <-p.work:
		case <-idle.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Schedule is protoactor's Dispatcher: a mailbox's run.
func (p *goPool) Schedule(fn func()) { p.Go(fn) }

// Throughput is protoactor's Dispatcher: messages per run of a mailbox.
func (p *goPool) Throughput() int { return mailboxThroughput }
