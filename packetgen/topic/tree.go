package topic

import "strings"

// Tree is a subscription index: a trie keyed by topic level that finds every
// subscription whose filter matches a topic name without comparing the name
// against each filter. It applies exactly the rules of Match.
//
// A subscription is a (filter, value) pair; the same filter may hold many
// values (one per session, say) and the same value many filters. Add a 5.0
// shared subscription under the filter that ParseShared returns: the
// "$share/{ShareName}/" part is not matched against names (section 4.8.2).
//
// A Tree is not safe for concurrent use: the broker serialises access (a
// sync.RWMutex lets Match calls run together, since Match only reads). The
// zero value is an empty tree ready to use.
type Tree[V comparable] struct {
	root node[V]
	n    int
}

// node is one level of the trie. The path from the root spells one filter,
// so a node that holds values knows that filter.
type node[V comparable] struct {
	children map[string]*node[V] // literal levels, the empty level included
	plus     *node[V]            // '+'
	hash     *node[V]            // '#', always a leaf

	filter string // the filter this node ends, once it holds values
	vals   []V
	// idx indexes vals once there are many, so Remove stays O(1) for a
	// filter with thousands of subscribers; small sets are searched.
	idx map[V]int
}

// indexAt is the number of values above which a node keeps idx.
const indexAt = 16

// Len returns the number of (filter, value) subscriptions in the tree.
func (t *Tree[V]) Len() int { return t.n }

// Add subscribes v to filter. It reports false, and changes nothing, if the
// pair is already present or filter is not a valid topic filter (see
// ValidateFilter; validate first to learn why).
func (t *Tree[V]) Add(filter string, v V) (added bool) {
	if ValidateFilter(filter, true) != nil {
		return false
	}
	n := &t.root
	for i := 0; ; {
		e := levelEnd(filter, i)
		n = n.step(filter[i:e], true)
		if e == len(filter) {
			break
		}
		i = e + 1
	}
	if n.find(v) >= 0 {
		return false
	}
	n.filter = filter
	n.vals = append(n.vals, v)
	if n.idx != nil {
		n.idx[v] = len(n.vals) - 1
	} else if len(n.vals) > indexAt {
		n.idx = make(map[V]int, len(n.vals))
		for i, x := range n.vals {
			n.idx[x] = i
		}
	}
	t.n++
	return true
}

// Remove unsubscribes v from filter and reports whether the pair was
// present. Nodes left empty are freed.
func (t *Tree[V]) Remove(filter string, v V) bool {
	if len(filter) == 0 || len(filter) > MaxLength {
		return false
	}
	if !t.root.remove(filter, 0, v) {
		return false
	}
	t.n--
	return true
}

// Match calls fn(filter, v) once for each subscription whose filter matches
// name, in no particular order. fn must not modify the tree. An empty name
// matches nothing.
func (t *Tree[V]) Match(name string, fn func(filter string, v V)) { matchTree(t, name, fn) }

// MatchBytes is Match for a name held in bytes, such as a topic aliased from
// a decoded PUBLISH. It does not allocate.
func (t *Tree[V]) MatchBytes(name []byte, fn func(filter string, v V)) { matchTree(t, name, fn) }

func matchTree[V comparable, N Text](t *Tree[V], name N, fn func(string, V)) {
	if len(name) == 0 || t.n == 0 {
		return
	}
	if name[0] == '$' {
		// Filters that start with a wildcard never match a name that
		// starts with '$' (MQTT-4.7.2-1): skip the root's '+' and '#'.
		e := levelEnd(name, 0)
		if c := t.root.children[string(name[:e])]; c != nil {
			walk(c, name, e+1, fn)
		}
		return
	}
	walk(&t.root, name, 0, fn)
}

// walk visits the subtree of n, which has matched every level of name
// before byte i. i == len(name) is the empty level after a trailing '/';
// i > len(name) means the name has no levels left.
func walk[V comparable, N Text](n *node[V], name N, i int, fn func(string, V)) {
	if n.hash != nil {
		// '#' matches the parent level and any number of child levels
		// (4.7.1.2), so it matches whether or not levels remain.
		n.hash.emit(fn)
	}
	if i > len(name) {
		n.emit(fn)
		return
	}
	e := levelEnd(name, i)
	// The conversion in a map index does not allocate.
	if c := n.children[string(name[i:e])]; c != nil {
		walk(c, name, e+1, fn)
	}
	if n.plus != nil {
		walk(n.plus, name, e+1, fn) // '+' matches any one level, even ""
	}
}

func (n *node[V]) emit(fn func(string, V)) {
	for _, v := range n.vals {
		fn(n.filter, v)
	}
}

// levelEnd returns the index of the '/' that ends the level starting at i,
// or len(s).
func levelEnd[T Text](s T, i int) int {
	for i < len(s) && s[i] != '/' {
		i++
	}
	return i
}

// step returns the child of n for one filter level, creating it if create
// is set, or nil.
func (n *node[V]) step(level string, create bool) *node[V] {
	var p **node[V]
	switch level {
	case "+":
		p = &n.plus
	case "#":
		p = &n.hash
	default:
		c := n.children[level]
		if c == nil && create {
			c = new(node[V])
			if n.children == nil {
				n.children = make(map[string]*node[V])
			}
			// Clone the key: a substring would keep the whole
			// filter alive for as long as the node lives.
			n.children[strings.Clone(level)] = c
		}
		return c
	}
	if *p == nil && create {
		*p = new(node[V])
	}
	return *p
}

// find returns the position of v in n.vals, or -1.
func (n *node[V]) find(v V) int {
	if n.idx != nil {
		if i, ok := n.idx[v]; ok {
			return i
		}
		return -1
	}
	for i, x := range n.vals {
		if x == v {
			return i
		}
	}
	return -1
}

// remove removes v from the node that filter[i:] leads to from n, pruning
// children that end up empty, and reports whether v was there.
func (n *node[V]) remove(filter string, i int, v V) bool {
	e := levelEnd(filter, i)
	level := filter[i:e]
	c := n.step(level, false)
	if c == nil {
		return false
	}
	if e < len(filter) {
		if !c.remove(filter, e+1, v) {
			return false
		}
	} else {
		k := c.find(v)
		if k < 0 {
			return false
		}
		last := len(c.vals) - 1
		if c.idx != nil {
			c.idx[c.vals[last]] = k
			delete(c.idx, v)
		}
		c.vals[k] = c.vals[last]
		var zero V
		c.vals[last] = zero // let the value be collected
		c.vals = c.vals[:last]
		if len(c.vals) == 0 {
			c.vals, c.idx, c.filter = nil, nil, ""
		}
	}
	if c.empty() {
		switch level {
		case "+":
			n.plus = nil
		case "#":
			n.hash = nil
		default:
			delete(n.children, level)
		}
	}
	return true
}

func (n *node[V]) empty() bool {
	return len(n.vals) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}
