// Package migrations holds Strøm's database schema as goose SQL migrations,
// embedded into the binary so a server can migrate the database it is pointed
// at without any file on disk. Package persistence runs them; nothing else
// should read them.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// FS returns the migration files, at the root of the file system as goose
// expects them.
func FS() fs.FS { return files }
