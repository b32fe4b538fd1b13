/*
 * layout.h -- the embedding block layout shared by the store (which keeps
 * one block per LMDB value) and the kernels that scan it (index/scan.h):
 * a block holds WD_BLOCK slots as float invnorm[WD_BLOCK] followed by
 * float vec[WD_BLOCK][dim].  Slot s lives in block s / WD_BLOCK at row
 * s % WD_BLOCK.
 */
#ifndef WD_LAYOUT_H
#define WD_LAYOUT_H

#define WD_BLOCK 256

#endif
