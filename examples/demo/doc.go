// Package demo is the demo schema — users and user_backups — and a fast
// seeder, without the example definitions (importing it registers nothing).
package demo
