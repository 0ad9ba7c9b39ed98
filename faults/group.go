package faults

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A group is a role (publishers, subscribers, idle) or a part of one:
// ROLE/N is the first 1/N of the role's connections, rounded up, so that
// a fault can cut off half the subscribers while the other half carry
// on (a partition, not an outage).
//
// Each connection goes through one proxy, its cell: the smallest part
// of its role that a fault names and that holds it, else the whole role.
// A fault on ROLE/N reaches every cell inside that part; a fault on the
// role reaches all of them.

// ParseGroup splits a group into its role and divisor: "subscribers" is
// (subscribers, 1), "subscribers/2" is (subscribers, 2).
func ParseGroup(g string) (role string, div int, err error) {
	role, d, part := strings.Cut(g, "/")
	if !slices.Contains(Groups, role) {
		return "", 0, fmt.Errorf("group: %q is not one of all, %s (or ROLE/N, the first 1/N of them)", g, strings.Join(Groups, ", "))
	}
	if !part {
		return role, 1, nil
	}
	n, err := strconv.Atoi(d)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("group: %q: want ROLE/N with N a whole number above 0, e.g. %s/2 for the first half", g, role)
	}
	return role, n, nil
}

// PartSize is how many of a role's n connections group part 1/div holds.
func PartSize(n, div int) int {
	if div <= 1 {
		return n
	}
	return (n + div - 1) / div
}

// Covers reports whether a fault on group g reaches the connections that
// go through cell (a group as CellOf names it).
func Covers(g, cell string) bool {
	gr, gd, err := ParseGroup(g)
	if err != nil {
		return false
	}
	cr, cd, err := ParseGroup(cell)
	// The first 1/cd lies within the first 1/gd when cd >= gd.
	return err == nil && gr == cr && cd >= gd
}

// CellOf is the cell of connection k (from 0) of a role's n: the
// smallest part of role among groups that holds it, else the role.
func CellOf(role string, k, n int, groups []string) string {
	cell, best := role, 1
	for _, g := range groups {
		r, d, err := ParseGroup(g)
		if err == nil && r == role && d > best && k < PartSize(n, d) {
			cell, best = g, d
		}
	}
	return cell
}
