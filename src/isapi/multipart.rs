//! Streaming `multipart/form-data` over multer, driven sans-IO: multer's parser is polled by hand
//! with a no-op waker over a buffer the caller fills, so no runtime, socket or thread is involved
//! and part bytes are counted (and passed on) as they arrive rather than collected.
