//go:build race

package logstream

const raceEnabled = true
