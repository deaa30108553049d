"""The console pages, the citizens' portal and the big screen (Jinja2 + HTMX + ECharts), in Chinese."""
