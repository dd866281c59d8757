"""File names of the model report, torch-free: the bot (/model) and the console point to the file
the trainer wrote into the model's folder without importing the report's code."""

REPORT_FILE = "report.html"
SUMMARY_FILE = "report.json"  # the headline numbers, for benchmarks and the notebook
