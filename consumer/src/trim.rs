//! Trimming `EYE_EVENTS`: removing events every consumer of the stream has
//! acknowledged (they are in ClickHouse) once the stream holds more than a
//! share of its byte limit.
//!
//! The stream keeps messages until they age out (limits retention, see
//! `eye_server_kit::jetstream`), and a full stream refuses publishers. Without
//! trimming, a stream that filled while the consumer was behind would keep
//! refusing events long after the consumer caught up, until old messages aged
//! out. Trimming purges up to the lowest ack floor of *all* consumers of the
//! stream, so no consumer (ours or one an operator added) loses a message it
//! has not acknowledged, and acknowledged history stays while there is room.

use async_nats::jetstream::stream::Stream;
use futures::TryStreamExt;

/// What one trim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trimmed {
    /// The stream is below the threshold, has no byte limit, or nothing
    /// below every ack floor is left to remove.
    Nothing,
    /// Messages below this sequence were purged; how many.
    Purged {
        /// First sequence kept.
        below: u64,
        /// Messages removed.
        messages: u64,
    },
}

/// The first sequence to keep, if the stream should be trimmed: `bytes` held
/// of `max_bytes` (negative: no limit), trimmed above `above_percent` of it;
/// `first_seq` is the stream's first sequence and `ack_floors` the stream
/// sequence each consumer has acknowledged everything up to.
pub fn keep_from(
    bytes: u64,
    max_bytes: i64,
    above_percent: u8,
    first_seq: u64,
    ack_floors: &[u64],
) -> Option<u64> {
    let max_bytes = u64::try_from(max_bytes).ok().filter(|max| *max > 0)?;
    if above_percent >= 100
        || u128::from(bytes) * 100 <= u128::from(max_bytes) * u128::from(above_percent)
    {
        return None;
    }
    // No consumer: nobody has stored anything, nothing may go.
    let floor = ack_floors.iter().copied().min()?;
    let keep = floor.checked_add(1)?;
    (keep > first_seq).then_some(keep)
}

/// Trims `stream` if it holds more than `above_percent` of its byte limit.
pub async fn trim(stream: &Stream, above_percent: u8) -> Result<Trimmed, String> {
    let info = stream
        .get_info()
        .await
        .map_err(|error| format!("stream info: {error}"))?;
    let name = &info.config.name;
    let floors: Vec<u64> = stream
        .consumers()
        .map_ok(|consumer| consumer.ack_floor.stream_sequence)
        .try_collect()
        .await
        .map_err(|error| format!("consumers of {name}: {error}"))?;
    let Some(keep) = keep_from(
        info.state.bytes,
        info.config.max_bytes,
        above_percent,
        info.state.first_sequence,
        &floors,
    ) else {
        return Ok(Trimmed::Nothing);
    };
    let purged = stream
        .purge()
        .sequence(keep)
        .await
        .map_err(|error| format!("purging {name} below {keep}: {error}"))?;
    Ok(Trimmed::Purged {
        below: keep,
        messages: purged.purged,
    })
}

#[cfg(test)]
mod tests {
    use super::keep_from;

    #[test]
    fn trims_only_above_the_threshold() {
        assert_eq!(keep_from(50, 100, 50, 1, &[40]), None);
        assert_eq!(keep_from(51, 100, 50, 1, &[40]), Some(41));
    }

    #[test]
    fn keeps_everything_some_consumer_has_not_acknowledged() {
        assert_eq!(keep_from(90, 100, 50, 1, &[40, 7, 90]), Some(8));
        // Nothing acknowledged yet, or nothing below the floor left.
        assert_eq!(keep_from(90, 100, 50, 1, &[0]), None);
        assert_eq!(keep_from(90, 100, 50, 41, &[40]), None);
    }

    #[test]
    fn no_consumer_no_limit_or_switched_off_means_no_trim() {
        assert_eq!(keep_from(90, 100, 50, 1, &[]), None);
        assert_eq!(keep_from(90, -1, 50, 1, &[40]), None);
        assert_eq!(keep_from(90, 0, 50, 1, &[40]), None);
        assert_eq!(keep_from(100, 100, 100, 1, &[40]), None);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        assert_eq!(keep_from(u64::MAX, i64::MAX, 99, 1, &[u64::MAX]), None);
        assert_eq!(keep_from(u64::MAX, i64::MAX, 1, 1, &[5]), Some(6));
    }
}
