-- longpollReadV1: reads up to limit messages after a position; a channel with no life answers the empty-channel
-- cursor "_<ms>.0" and is not written (includes/channel-life.lua).
-- KEYS[1] meta hash, KEYS[2] message list (see longpollAppendV2)
-- ARGV[1] epoch to use if the read forks the channel (a cursor past the newest seq after a loss of writes)
-- ARGV[2] position: 'o' oldest, 'l' latest, 'c' cursor   ARGV[3] cursor epoch   ARGV[4] cursor seq
-- ARGV[5] limit   ARGV[6] now (ms)   ARGV[7] emptyChannelTtl (ms)
-- Returns { epoch, seq, gap, messages } where seq is the seq just before the first message returned (or, with
-- none, the answer's seq) and gap is 0 or 1; or { epoch, newest seq, PAST_NEWEST } for a cursor past the newest message.
--- @include "read-channel"
return read_channel(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
