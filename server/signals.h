// SIGTERM/SIGINT handling for `vlmd serve`: the signals are blocked in every thread and a
// dedicated thread receives them with sigwait, so no async-signal-safety rules apply to
// what happens next.
#pragma once

#include <functional>

namespace vlmd::server {

// Blocks SIGTERM and SIGINT in the calling thread; threads created afterwards inherit the
// mask. Call before any other thread starts.
void BlockTerminationSignals();

// Starts a detached thread that calls `on_signal(signo)` for each SIGTERM/SIGINT received.
// Call after BlockTerminationSignals.
void WatchTerminationSignals(std::function<void(int)> on_signal);

}  // namespace vlmd::server
