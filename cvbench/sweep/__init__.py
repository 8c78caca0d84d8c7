"""`cvbench sweep`: a matrix of runs (models x tasks x settings) executed locally or on Ray.

spec: the SWEEP.toml file -> typed run specs (each exactly a `cvbench run`);
plan: run folders, shards, job order and request estimates;
execute: the executors' shared bookkeeping (what is done, merging shards);
local / ray_executor: the two executors; progress: the sweep-wide progress line and status file.
"""
