package host

// filevercmp is GNU sort -V's comparison (gnulib lib/filevercmp.c,
// filenvercmp, as in coreutils 9.7; 9.1 differs only for a name whose
// first character starts a suffix, which no /boot path does): hidden
// names first, then the names without their file suffixes, then whole.
func filevercmp(a, b string) int {
	switch {
	case a == "" || b == "":
		return boolInt(a != "") - boolInt(b != "")
	case a[0] == '.' && b[0] != '.':
		return -1
	case a[0] != '.' && b[0] == '.':
		return 1
	case a[0] == '.':
		for _, special := range []string{".", ".."} {
			if a == special || b == special {
				return boolInt(a != special) - boolInt(b != special)
			}
		}
	}
	ap, bp := filePrefixLen(a), filePrefixLen(b)
	if c := verrevcmp(a[:ap], b[:bp], gnulibOrder); c != 0 || (ap == len(a) && bp == len(b)) {
		return c
	}
	return verrevcmp(a, b, gnulibOrder)
}

// filePrefixLen is the length of s without its longest file suffix,
// (\.[A-Za-z~][A-Za-z0-9~]*)*$, never all of s.
func filePrefixLen(s string) int {
	prefix := 0
	for i := 0; i < len(s); {
		i++
		prefix = i
		for i+1 < len(s) && s[i] == '.' && (isAlpha(s[i+1]) || s[i+1] == '~') {
			for i += 2; i < len(s) && (isAlnum(s[i]) || s[i] == '~'); i++ {
			}
		}
	}
	return prefix
}

// gnulibOrder is filevercmp's order(): unlike dpkg's, the end of the
// string sorts after '~' and before everything else.
var gnulibOrder = charOrder(-2, -1)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
