"""Time limits (时限) at work: deadlines kept in step with every ticket event, and timers fired by the worker.

- `subscriber`: `Clockwork`, the engine subscriber that plans and moves deadlines and timers on ticket events
  (the rules themselves are `minsheng.timelimits.rules`);
- `firing`: the worker's half: claiming due timers and firing them (timeline events and notifications);
- `messages`: who is told (duty rosters, the organisation) and what (message templates), on which channels;
- `policies`: policies as stored JSON, and the policies, calendar and zones as the clock reads them;
- `admin`: what admins edit: policies, zones, the local calendar, duty rosters, message templates;
- `views`: what is running: timers, a ticket's deadlines, who is on duty;
- `config`: `TimeLimitConfig` (built by `minsheng.bootstrap`).
"""
