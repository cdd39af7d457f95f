//go:build !linux

package main

// harden does nothing outside Linux (see harden_linux.go).
func harden() error { return nil }
