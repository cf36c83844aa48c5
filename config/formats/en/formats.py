"""One date format everywhere, portal and admin, with the time zone shown: "2 Dec 2026, 18:31 UTC".
Django takes its locale's formats over settings.DATETIME_FORMAT, so ours are a format module
(settings.FORMAT_MODULE_PATH). Times are shown in settings.TIME_ZONE (UTC), and say so."""
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i T"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
