package topic

// Match reports whether the topic filter matches the topic name under the
// rules of section 4.7. Both must be valid (see ValidateFilter and
// ValidateName); for anything else the result is unspecified, but Match never
// panics. A shared subscription filter ("$share/group/...") is taken
// literally: match the filter that ParseShared returns.
//
//   - Levels are the strings between '/' separators, and empty levels are
//     real levels: "/finance" has the levels "" and "finance" (4.7.1.1).
//   - '+' matches exactly one level, an empty one too: "sport/+" matches
//     "sport/" but not "sport" (4.7.1.3).
//   - '#' matches the parent level and any number of child levels:
//     "sport/#" matches "sport", "sport/" and "sport/a/b" (4.7.1.2).
//   - Every other level must equal the name's level byte for byte; nothing is
//     case-folded or normalised (MQTT-4.7.3-4).
//   - A filter whose first character is a wildcard never matches a name
//     whose first character is '$' (MQTT-4.7.2-1), while "$SYS/#" matches
//     "$SYS/x".
//
// Match does not allocate.
func Match[F, N Text](filter F, name N) bool {
	fl, nl := len(filter), len(name)
	if fl == 0 || nl == 0 {
		return false
	}
	if name[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false // MQTT-4.7.2-1
	}
	// i and j index the start of the current level of filter and name.
	// i == fl stands for the empty level after a trailing '/'. nameDone
	// means the name has run out of levels, which only '#' can absorb.
	i, j := 0, 0
	nameDone := false
	for {
		wild := i < fl && (i+1 == fl || filter[i+1] == '/')
		if wild && filter[i] == '#' {
			return true // the parent level, and anything below it
		}
		if nameDone {
			return false
		}
		if wild && filter[i] == '+' {
			i++
			for j < nl && name[j] != '/' {
				j++
			}
		} else {
			// Compare the level byte for byte (MQTT-4.7.3-4). Both
			// indexes stop on the next '/' or at the end.
			for i < fl && filter[i] != '/' {
				if j == nl || name[j] != filter[i] {
					return false
				}
				i++
				j++
			}
			if j < nl && name[j] != '/' {
				return false
			}
		}
		if i == fl {
			return j == nl
		}
		i++ // past the filter's '/'
		if j == nl {
			nameDone = true
		} else {
			j++ // past the name's '/'
		}
	}
}
