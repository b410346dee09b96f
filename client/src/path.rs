//! Path validation, rule for rule as ZooKeeper's `PathUtils.validatePath`, so that a bad path
//! is refused before it is sent instead of costing a round trip (or a dropped connection).
//!
//! ZooKeeper checks Java `char`s, which are UTF-16 code units; so does this module, which is
//! why any character outside the Basic Multilingual Plane (a surrogate pair) is refused.

/// Why a path is not a valid ZooKeeper path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct InvalidPath {
    /// The path as given.
    pub path: String,
    /// ZooKeeper's reason, with the UTF-16 offset where it applies.
    pub reason: PathProblem,
}

/// The rule a path broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// The path is empty.
    #[error("path length must be > 0")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with / character")]
    NoLeadingSlash,
    /// The path ends with `/` (and is not the root).
    #[error("path must not end with / character")]
    TrailingSlash,
    /// A NUL character.
    #[error("null character not allowed @{0}")]
    NullCharacter(usize),
    /// Two slashes in a row.
    #[error("empty node name specified @{0}")]
    EmptyNodeName(usize),
    /// A `.` or `..` component.
    #[error("relative paths not allowed @{0}")]
    Relative(usize),
    /// A control character, a surrogate, a private-use character or one of U+FFF0..U+FFFF.
    #[error("invalid character @{0}")]
    InvalidCharacter(usize),
}

/// Checks `path` as ZooKeeper would before accepting it.
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    check(path).map_err(|reason| InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

/// Checks the prefix of a sequential create: ZooKeeper validates it with a digit appended,
/// so `/locks/` is a valid prefix (it becomes `/locks/0000000001`).
pub fn validate_sequential_path(prefix: &str) -> Result<(), InvalidPath> {
    let mut with_suffix = String::with_capacity(prefix.len() + 1);
    with_suffix.push_str(prefix);
    with_suffix.push('1');
    check(&with_suffix).map_err(|reason| InvalidPath {
        path: prefix.to_owned(),
        reason,
    })
}

/// Checks a create path, appending the sequence digit when the mode is sequential.
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if sequential {
        validate_sequential_path(path)
    } else {
        validate_path(path)
    }
}

fn check(path: &str) -> Result<(), PathProblem> {
    let chars: Vec<u16> = path.encode_utf16().collect();
    let Some(&first) = chars.first() else {
        return Err(PathProblem::Empty);
    };
    if first != u16::from(b'/') {
        return Err(PathProblem::NoLeadingSlash);
    }
    if chars.len() == 1 {
        return Ok(());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    if chars[chars.len() - 1] == slash {
        return Err(PathProblem::TrailingSlash);
    }
    // A component boundary: the end of the path or a slash.
    let ends_component = |i: usize| i + 1 == chars.len() || chars[i + 1] == slash;
    for i in 1..chars.len() {
        let c = chars[i];
        let last = chars[i - 1];
        if c == 0 {
            return Err(PathProblem::NullCharacter(i));
        } else if c == slash && last == slash {
            return Err(PathProblem::EmptyNodeName(i));
        } else if c == dot && last == dot {
            // `..` as a whole component (i >= 2 here: chars[1] follows the leading slash).
            if chars[i - 2] == slash && ends_component(i) {
                return Err(PathProblem::Relative(i));
            }
        } else if c == dot {
            if last == slash && ends_component(i) {
                return Err(PathProblem::Relative(i));
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            return Err(PathProblem::InvalidCharacter(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str) -> Option<PathProblem> {
        validate_path(path).err().map(|e| e.reason)
    }

    #[test]
    fn root_and_ordinary_paths_are_valid() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/zookeeper/quota",
            "/a.b",
            "/.a",
            "/a..",
            "/...",
            "/é",
            "/a b",
        ] {
            assert_eq!(problem(p), None, "{p}");
        }
    }

    #[test]
    fn empty_path() {
        assert_eq!(problem(""), Some(PathProblem::Empty));
    }

    #[test]
    fn no_leading_slash() {
        assert_eq!(problem("a/b"), Some(PathProblem::NoLeadingSlash));
        assert_eq!(problem("."), Some(PathProblem::NoLeadingSlash));
    }

    #[test]
    fn trailing_slash() {
        assert_eq!(problem("/a/"), Some(PathProblem::TrailingSlash));
        assert_eq!(problem("//"), Some(PathProblem::TrailingSlash));
    }

    #[test]
    fn double_slash() {
        assert_eq!(problem("/a//b"), Some(PathProblem::EmptyNodeName(3)));
        assert_eq!(problem("//a"), Some(PathProblem::EmptyNodeName(1)));
    }

    #[test]
    fn dot_components() {
        assert_eq!(problem("/."), Some(PathProblem::Relative(1)));
        assert_eq!(problem("/a/./b"), Some(PathProblem::Relative(3)));
        assert_eq!(problem("/.."), Some(PathProblem::Relative(2)));
        assert_eq!(problem("/a/../b"), Some(PathProblem::Relative(4)));
        assert_eq!(problem("/a/.."), Some(PathProblem::Relative(4)));
    }

    #[test]
    fn nul_character() {
        assert_eq!(problem("/a\0b"), Some(PathProblem::NullCharacter(2)));
    }

    #[test]
    fn forbidden_code_point_ranges() {
        for (c, ok) in [
            ('\u{1}', false),
            ('\u{1f}', false),
            ('\u{20}', true),
            ('\u{7e}', true),
            ('\u{7f}', false),
            ('\u{9f}', false),
            ('\u{a0}', true),
            ('\u{d7ff}', true),
            ('\u{e000}', false),
            ('\u{f8ff}', false),
            ('\u{f900}', true),
            ('\u{ffef}', true),
            ('\u{fff0}', false),
            ('\u{fffd}', false),
            // Outside the BMP: a surrogate pair in UTF-16, refused like Java refuses it.
            ('\u{1f600}', false),
        ] {
            let path = format!("/a{c}");
            let expected = if ok {
                None
            } else {
                Some(PathProblem::InvalidCharacter(2))
            };
            assert_eq!(problem(&path), expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn offsets_count_utf16_units() {
        // "é" is one UTF-16 unit (two UTF-8 bytes): the NUL stands at unit 3.
        assert_eq!(problem("/éa\0"), Some(PathProblem::NullCharacter(3)));
    }

    #[test]
    fn sequential_prefix_gets_a_suffix() {
        assert!(validate_sequential_path("/locks/").is_ok());
        assert!(validate_path("/locks/").is_err());
        assert!(validate_create_path("/locks/lock-", true).is_ok());
        assert!(validate_create_path("/a//", true).is_err());
        assert!(validate_create_path("/locks/", false).is_err());
    }

    #[test]
    fn error_names_the_path() {
        let e = validate_path("/a/").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid path \"/a/\": path must not end with / character"
        );
    }
}
