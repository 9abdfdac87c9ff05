"""The reader studies' writes, so the views and the demo stay thin.

build: freeze a draft (choose cases, blind and store the images, make the items). reading: readers'
sessions, the current item, answers and drafts, the images a reader may fetch. studies: create and edit
drafts, invite readers, close and reopen. publishing: a study's results into the clinical tier of its
task's leaderboard. Reads for editors' pages are in `readerstudy.selectors`.
"""
