/* Version of the programs and of the formats they write (see common/format.h). */
#ifndef SL_VERSION_H
#define SL_VERSION_H

#define SL_VERSION "0.1.0"

#endif
