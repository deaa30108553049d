"""Channel adapters (issue 16): SMS, WeChat official account, e-mail, call records, grid patrol reports.

Every adapter turns its gateway's message into an `InboundMessage` and hands it to `base.receive`, which takes
it in through the ticket engine's ordinary intake (or as a rating, a tracking question or an addition to a
ticket) idempotently on the channel's own message id. Answers to the citizen go out through the outbox."""
