//go:build !race

package logstream

const raceEnabled = false
