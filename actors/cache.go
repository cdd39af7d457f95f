package actors

import "sync"

// boundedCache is a map that holds at most a given number of entries: the
// oldest entry goes first when a new one comes. Its zero value is ready.
type boundedCache[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	order []string
}

func (c *boundedCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// put stores v under key, in place when key is held already; otherwise,
// with max entries held, the oldest goes.
func (c *boundedCache[V]) put(key string, v V, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]V{}
	}
	if _, ok := c.m[key]; ok {
		c.m[key] = v
		return
	}
	if len(c.order) >= max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[key] = v
	c.order = append(c.order, key)
}
