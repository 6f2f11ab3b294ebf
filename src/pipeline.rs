//! The analysis pipeline: frames -> TCP events -> HTTP messages -> exchanges with decoded events.
//! Sans-IO: the caller feeds frames (from a file, a live capture or a test) and takes results.
