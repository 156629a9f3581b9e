//! A device's configuration as cluster-glue takes it: name/value pairs, or the `-p` string
//! (`stonith_set_config_info`) and the `-F` file (`stonith_set_config_file`) that give the
//! values in the order of the configuration names.

/// The characters that separate host names in a `hostlist` (cluster-glue's set).
pub const HOST_SEPARATORS: &[char] = &[' ', '\t', '\n', '\r', '\x0c', ','];

/// The longest configuration file read, in bytes.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// The words of a host list, lower-cased as cluster-glue does.
///
/// ```
/// use ocf::stonith::config::split_hosts;
/// assert_eq!(split_hosts(" Node1 NODE2,\tn3\n\r\x0cn4,, "), ["node1", "node2", "n3", "n4"]);
/// assert!(split_hosts(" , ").is_empty());
/// ```
pub fn split_hosts(text: &str) -> Vec<String> {
    text.split(HOST_SEPARATORS)
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The `-p` string as pairs: the first names take one whitespace-separated word each, the last
/// takes the rest of the line (so a host list keeps its spaces). `None` when there are fewer
/// words than names.
///
/// ```
/// use ocf::stonith::config::info_to_pairs;
/// let names = ["ipaddr".to_owned(), "hostlist".to_owned()];
/// assert_eq!(info_to_pairs(&names, "10.0.0.1 a b").unwrap(),
///            [("ipaddr".to_owned(), "10.0.0.1".to_owned()), ("hostlist".to_owned(), "a b".to_owned())]);
/// assert!(info_to_pairs(&names, "10.0.0.1").is_none());
/// ```
pub fn info_to_pairs(names: &[String], info: &str) -> Option<Vec<(String, String)>> {
    let mut rest = info.trim_start();
    let mut pairs = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if i + 1 == names.len() {
            let value = rest.trim();
            if value.is_empty() {
                return None;
            }
            pairs.push((name.clone(), value.to_owned()));
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            pairs.push((name.clone(), rest[..end].to_owned()));
            rest = rest[end..].trim_start();
        }
    }
    Some(pairs)
}

/// The `-F` file's text as a `-p` string: lines starting with `#` are comments, the others
/// are joined.
///
/// ```
/// assert_eq!(ocf::stonith::config::file_to_info("# hosts\nx Y\n\nz\n"), "x Y z");
/// ```
pub fn file_to_info(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a configuration file: a regular file of at most [`MAX_CONFIG_FILE`] bytes, opened
/// without blocking (a FIFO or a device is refused, not waited on).
pub fn read_config_file(path: &std::path::Path) -> Result<String, String> {
    ocf_ref::bounded_read::read_regular_string(path, MAX_CONFIG_FILE)
        .map(|(text, _)| text)
        .map_err(|e| e.to_string())
}
