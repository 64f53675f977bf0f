//! What `relay status` scraped: each `--scrape` address's `/metrics`
//! samples, or why there are none.

use relay_supervisor::scrape::Sample;

/// What each scraped address answered: its samples, or why there are none.
pub(super) type Scraped = [(String, Result<Vec<Sample>, String>)];
