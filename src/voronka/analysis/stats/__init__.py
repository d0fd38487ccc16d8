"""The statistics template (шаблон статистик): the funnel as a weekly table with plans and money."""
