package backfills

// SetFastLoad turns the records' own scanner on or off (off: gorm's Find)
// and returns a function that restores it.
func SetFastLoad(on bool) (restore func()) {
	was := fastLoad
	fastLoad = on
	return func() { fastLoad = was }
}

// Scanned reports whether the pipeline (of an opened backfill) loads its
// records with its own scanner rather than gorm's Find.
func Scanned(p any) bool {
	type scanned interface{ scanned() bool }
	s, ok := p.(scanned)
	return ok && s.scanned()
}

func (p *pipeline[M, P]) scanned() bool { return p.scanner != nil && !p.scanner.off.Load() }
