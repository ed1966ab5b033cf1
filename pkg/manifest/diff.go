package manifest

// Diff is how two manifests of one channel differ, by path.
type Diff struct {
	// OnlyA and OnlyB list the paths only one of them has; Changed the
	// paths both have in another version (content or chunk size).
	OnlyA, OnlyB, Changed []string
}

// Empty reports whether the manifests list the same objects.
func (d Diff) Empty() bool { return len(d.OnlyA)+len(d.OnlyB)+len(d.Changed) == 0 }

// Compare returns how a and b differ. Both lists are sorted by path, so
// one merge walk does it.
func Compare(a, b *Manifest) Diff {
	var d Diff
	i, j := 0, 0
	for i < len(a.Objects) || j < len(b.Objects) {
		switch {
		case j == len(b.Objects) || (i < len(a.Objects) && a.Objects[i].Path < b.Objects[j].Path):
			d.OnlyA = append(d.OnlyA, a.Objects[i].Path)
			i++
		case i == len(a.Objects) || b.Objects[j].Path < a.Objects[i].Path:
			d.OnlyB = append(d.OnlyB, b.Objects[j].Path)
			j++
		default:
			if a.Objects[i].Version != b.Objects[j].Version {
				d.Changed = append(d.Changed, a.Objects[i].Path)
			}
			i++
			j++
		}
	}
	return d
}
