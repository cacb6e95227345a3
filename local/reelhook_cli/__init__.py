"""The ``reelhook`` command line: submit jobs, follow them and fetch their videos.

Development-side only (installed with the project, never shipped to Lambda).
"""
