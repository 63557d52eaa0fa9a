package sqlstore

import (
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// page is one page of a keyset listing: at most limit rows of table that
// match every condition in where and, if states is not empty, have one of
// states, in order (an indexed column, optionally DESC).
type page struct {
	table  string
	where  []string // SQL conditions with ? placeholders
	args   []any    // for where, in order
	states []string
	order  string
	limit  int
}

// find runs the listing into dest, a pointer to a slice of rows.
//
// With several states it reads one ordered index range per state and merges
// them in the same statement (so at a single instant): an IN list would make
// the database collect and sort every matching row before taking the page.
func (p page) find(db *gorm.DB, dest any) error {
	states := slices.Clone(p.states)
	slices.Sort(states)
	states = slices.Compact(states)
	if len(states) <= 1 {
		where, args := p.where, p.args
		if len(states) == 1 {
			where = append(slices.Clip(where), "state = ?")
			args = append(slices.Clip(args), states[0])
		}
		sql := fmt.Sprintf("SELECT * FROM %s%s ORDER BY %s LIMIT %d", p.table, whereClause(where), p.order, p.limit)
		return db.Raw(sql, args...).Scan(dest).Error
	}
	parts := make([]string, len(states))
	var args []any
	for i, st := range states {
		where := append([]string{"state = ?"}, p.where...)
		parts[i] = fmt.Sprintf("SELECT * FROM (SELECT * FROM %s%s ORDER BY %s LIMIT %d) s%d",
			p.table, whereClause(where), p.order, p.limit, i)
		args = append(append(args, st), p.args...)
	}
	sql := strings.Join(parts, " UNION ALL ") + fmt.Sprintf(" ORDER BY %s LIMIT %d", p.order, p.limit)
	return db.Raw(sql, args...).Scan(dest).Error
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}
